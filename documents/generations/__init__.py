"""generations."""
