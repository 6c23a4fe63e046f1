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
KEPT = names.KEPT
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
    connection. Kept revert data (:func:`kept`) is not pending."""
    from mistral_db_flows.revert import journal

    found = set(journal.revisions(conn)) - set(journal.kept(conn))
    conn.commit()
    return _newest_first(found)


def kept(conn: Any) -> list[str]:
    """Revisions whose revert data a finished run kept, newest first."""
    from mistral_db_flows.revert import journal

    found = set(journal.kept(conn))
    conn.commit()
    return _newest_first(found)


def _read(url: str) -> tuple[set[str], set[str]]:
    """(revisions with journal entries, kept revisions), bare driver."""
    from mistral_db_flows import dbapi

    handle = dbapi.connect(url)
    try:
        out: list[set[str]] = []
        for table in (TABLE, KEPT):
            query = names.exists_query(handle.dialect, table)
            if query is None or not handle.rows(query)[0][0]:
                out.append(set())
                continue
            out.append({r[0] for r in handle.rows(
                "SELECT DISTINCT revision FROM %s" % table)})
        return out[0], out[1]
    finally:
        handle.close()


def pending_in(url: str) -> list[str]:
    """:func:`pending` with the bare driver (fast, for ``status``)."""
    entries, kept_ = _read(url)
    return _newest_first(entries - kept_)


def replayable_in(url: str) -> list[str]:
    """Revisions the database holds a journal or kept data for."""
    entries, kept_ = _read(url)
    return _newest_first(entries | kept_)


def pending_and_kept_in(url: str) -> tuple[list[str], list[str]]:
    """:func:`pending_in` and :func:`kept`'s revisions, newest first,
    from one read with the bare driver (``status`` shows both)."""
    entries, kept_ = _read(url)
    return _newest_first(entries - kept_), _newest_first(kept_)


def finish(conn: Any) -> list[str]:
    """Finish every pending revert, newest step first; the revisions
    reverted."""
    done = pending(conn)
    for revision in done:
        revert_step(conn, revision)
    return done


def settle(conn: Any, *, keep: bool = False,
           run_id: str | None = None) -> list[str]:
    """The run ended well (or was abandoned): its steps' journals go,
    or with ``keep`` stay as kept revert data for ``downgrade``. Data
    kept by earlier runs is left alone. The revisions settled."""
    from mistral_db_flows.revert import journal

    done = pending(conn)
    if keep:
        journal.keep(conn, done, run_id)
    else:
        journal.forget_many(conn, done)
    conn.commit()
    return done


def discard(conn: Any) -> list[str]:
    """Drop every journal table, kept revert data included (the schema
    is exactly upstream's again); the kept revisions dropped."""
    from mistral_db_flows.revert import journal

    dropped = kept(conn)
    journal.discard(conn)
    conn.commit()
    return dropped
