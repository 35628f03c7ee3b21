"""Detector families, each loaded once and run at any of its knob settings."""
