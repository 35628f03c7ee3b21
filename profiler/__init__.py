"""Offline profiling of branches under generated contention (a later issue)."""
