"""Tests for the generation package."""
