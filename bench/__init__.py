"""Load and latency benchmarks; each script prints a table and compares with a baseline in the same run."""
