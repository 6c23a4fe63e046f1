"""Names of the revert journal's tables (no imports: ``status`` and the
schema dump ask them without loading SQLAlchemy's side of the journal)."""
from __future__ import annotations

TABLE = "mdf_revert_steps"
# The revisions whose journal a finished run kept for ``downgrade``
# (``[db_manage] keep_revert_data``): not a revert to finish.
KEPT = "mdf_revert_kept"
# Data copies: mdf_revert_<revision>_<seq>.
PREFIX = "mdf_revert_"


def is_step_copy(name: str) -> bool:
    """Whether ``name`` is a step's data copy, mdf_revert_<rev>_<seq>."""
    rest = name[len(PREFIX):] if name.startswith(PREFIX) else ""
    revision, _, seq = rest.rpartition("_")
    return bool(revision) and seq.isdigit()


def is_journal_table(name: str) -> bool:
    """Whether ``name`` is one of ours (never part of Mistral's schema)."""
    return name == TABLE or name.startswith(PREFIX)


# Whether a table exists, per backend, with the bare driver (``status``
# and populate ask without SQLAlchemy).
_EXISTS = {
    "postgresql": "SELECT to_regclass('%s') IS NOT NULL",
    "mysql": "SELECT COUNT(*) FROM information_schema.tables WHERE "
             "table_schema = DATABASE() AND table_name = '%s'",
    "sqlite": "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
              "AND name = '%s'",
}


def exists_query(dialect: str, table: str) -> str | None:
    """The query whose one value says whether ``table`` (one of ours:
    a fixed name, never user input) exists; None for another dialect."""
    query = _EXISTS.get(dialect)
    return query % table if query else None
