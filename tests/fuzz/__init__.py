"""Property-based fuzzing of the live server against its own OpenAPI document (Schemathesis)."""
