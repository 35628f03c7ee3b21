"""Benchmarks: fixed branches (`kernel`) and policies under contention (`adaptive`)."""
