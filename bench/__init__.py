"""Benchmarks that print their figures: pipeline stages, lip-sync, a call, the Redis hop."""
