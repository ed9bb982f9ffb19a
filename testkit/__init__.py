"""What the tests, benchmarks and load tests share: synthetic peers, hostile inputs, fakes."""
