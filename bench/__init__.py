"""Benchmarks: `make bench` runs each one and writes its figure to bench/results/."""
