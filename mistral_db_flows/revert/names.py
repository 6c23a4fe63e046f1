"""Names of the revert journal's tables (no imports: ``status`` and the
schema dump ask them without loading SQLAlchemy's side of the journal)."""
from __future__ import annotations

TABLE = "mdf_revert_steps"
# The revisions whose journal a finished run kept for ``downgrade``
# (``[db_manage] keep_revert_data``): not a revert to finish.
KEPT = "mdf_revert_kept"
# Data copies: mdf_revert_<revision>_<seq>.
PREFIX = "mdf_revert_"


def is_journal_table(name: str) -> bool:
    """Whether ``name`` is one of ours (never part of Mistral's schema)."""
    return name == TABLE or name.startswith(PREFIX)
