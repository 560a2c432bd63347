"""Tests of the scheduled jobs, run through the job runner against the real app."""
