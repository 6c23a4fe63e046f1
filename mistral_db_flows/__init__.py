"""mistral-db-flows: safe, resumable database management for Mistral."""

__version__ = "0.1.0"
