"""Benchmarks: flowfleet against the designs it replaces (see docs/throughput.md)."""
