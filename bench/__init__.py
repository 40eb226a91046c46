"""Keel's benchmarks, run by `make bench` (``python -m bench.run``). See bench/run.py."""
