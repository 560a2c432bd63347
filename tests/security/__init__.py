"""Security tests: hostile input against the running app (issue #7)."""
