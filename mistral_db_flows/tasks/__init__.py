"""Task plugins of mistral-db-flows, one task family per module.

Each module exposes ``factory(ctx)`` (or several, one per plugin name),
registered in setup.cfg under the ``mistral_db_flows.tasks`` namespace.
Tasks get the database URL through their constructor, never through the
engine store, and return JSON-ready results.
"""
