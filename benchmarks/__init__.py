"""pytest-benchmark suite: run explicitly with ``pytest benchmarks/`` (see conftest.py)."""
