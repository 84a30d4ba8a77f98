"""Helpers shared by Gnomon's tests and benchmarks."""
