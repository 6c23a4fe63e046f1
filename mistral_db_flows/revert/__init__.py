"""Per-step revert: each migrate step undoes exactly its own change.

``journal`` owns the side tables in the target database (format and
storage), ``record`` what each ``ddl`` operation writes there before it
acts, ``replay`` applying a step's inverses. This module is what the
migrate task, the run engine and ``status`` call; it imports neither
SQLAlchemy nor Alembic until a revert is actually replayed.
"""
from __future__ import annotations

from typing import Any

from mistral_db_flows.revert import names

TABLE = names.TABLE
is_journal_table = names.is_journal_table

def parent_of(revision: str) -> str | None:
    """The revision a step of ``revision`` starts from (None: base)."""
    from mistral_db_flows import revisions

    downs = revisions.graph().revisions[revision].down_revisions
    return downs[0] if downs else None


def _newest_first(found: set[str]) -> list[str]:
    from mistral_db_flows import revisions

    return [r for r in reversed(revisions.graph().order) if r in found]


def revert_step(conn: Any, revision: str, *,
                move_version: bool = True) -> Any:
    """Undo step ``revision``; what was undone (``replay.Undone``).
    ``move_version``: set ``alembic_version`` back even when the journal
    is empty (a step that did apply a revision with nothing to undo)."""
    from mistral_db_flows.revert import replay

    return replay.revert_step(conn, revision, parent_of(revision),
                              move_version=move_version)


def pending(conn: Any) -> list[str]:
    """Revisions whose revert is recorded but not finished, newest
    first (the order they must be reverted in), on a SQLAlchemy
    connection."""
    from mistral_db_flows.revert import journal

    found = set(journal.revisions(conn))
    conn.commit()
    return _newest_first(found)


def pending_in(url: str) -> list[str]:
    """:func:`pending` with the bare driver (fast, for ``status``)."""
    from mistral_db_flows import dbapi

    handle = dbapi.connect(url)
    try:
        query = names.exists_query(handle.dialect, TABLE)
        if query is None or not handle.rows(query)[0][0]:
            return []
        return _newest_first({r[0] for r in handle.rows(
            "SELECT DISTINCT revision FROM %s" % TABLE)})
    finally:
        handle.close()


def finish(conn: Any) -> list[str]:
    """Finish every pending revert, newest step first; the revisions
    reverted."""
    done = pending(conn)
    for revision in done:
        revert_step(conn, revision)
    return done


def discard(conn: Any) -> None:
    """The run ended well: drop the journal (the schema at head is
    exactly upstream's again)."""
    from mistral_db_flows.revert import journal

    journal.discard(conn)
    conn.commit()
