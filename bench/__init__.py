"""Benchmarks of Gnomon; run each with `python -m bench.<name>` from the repository root."""
