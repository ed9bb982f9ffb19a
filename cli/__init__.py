"""The command line: the composition root that wires settings, gateway, workers, benches and
the load tester together (nothing imports it)."""
