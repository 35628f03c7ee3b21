"""SLA-driven branch selection (a later issue)."""
