"""Helpers of scripts/bench.py: the floor SQL, the seeded workload, the stores, the report."""
