"""Per-step revert: each migrate step undoes exactly its own change.

``journal`` owns the side tables in the target database (format and
storage), ``record`` what each ``ddl`` operation writes there before it
acts, ``replay`` applying a step's inverses. This module is what the
migrate task and the run engine call.
"""
from __future__ import annotations

from typing import Any

from mistral_db_flows.revert import journal

is_journal_table = journal.is_journal_table


def parent_of(revision: str) -> str | None:
    """The revision a step of ``revision`` starts from (None: base)."""
    from mistral_db_flows import revisions

    downs = revisions.graph().revisions[revision].down_revisions
    return downs[0] if downs else None


def revert_step(conn: Any, revision: str, *,
                move_version: bool = True) -> int:
    """Undo step ``revision``; the number of inverses applied.
    ``move_version``: set ``alembic_version`` back even when the journal
    is empty (a step that did apply a revision with nothing to undo)."""
    from mistral_db_flows.revert import replay

    return replay.revert_step(conn, revision, parent_of(revision),
                              move_version=move_version)


def pending(conn: Any) -> list[str]:
    """Revisions whose revert is recorded but not finished, newest
    first (the order they must be reverted in)."""
    from mistral_db_flows import revisions

    found = set(journal.revisions(conn))
    conn.commit()
    order = revisions.graph().order
    return [r for r in reversed(order) if r in found]


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
    journal.discard(conn)
    conn.commit()
