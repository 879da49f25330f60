"""Reproducible performance measurements: `python -m benchmarks` (what `make bench` runs)."""
