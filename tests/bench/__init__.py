"""Smoke tests of the benchmarks: they run at tiny sizes (their figures are not checked)."""
