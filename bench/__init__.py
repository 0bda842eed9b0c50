"""Benchmarks: run them as scripts, e.g. python -m bench.ingest."""
