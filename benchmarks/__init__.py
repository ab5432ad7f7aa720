"""Benchmarks: `python -m benchmarks.env`, `benchmarks.train`, `benchmarks.data` (shared code in common.py)."""
