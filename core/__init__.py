"""Process-wide plumbing shared by server.py, handlers and jobs: settings, logging, clients, context."""
