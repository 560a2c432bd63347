"""wallet."""
