"""Operator benchmarks: apply -> first Job latency and peak memory (see __main__)."""
