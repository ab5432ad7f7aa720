"""Benchmarks: `.venv/bin/python -m benchmarks.env`, `.train`, `.data`; what they share is in common.py."""
