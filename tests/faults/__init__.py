"""Fault tests: RuStore outages, Redis dying, and a server process killed in the middle of the money path."""
