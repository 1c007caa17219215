"""Benchmarks of the product, run by hand: `python -m bench.<name>` (not part of the tests)."""
