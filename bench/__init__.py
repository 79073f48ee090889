"""Benchmark harness for the hip pain triage assistant (`make bench`, `make bench-smoke`)."""
