"""The revert journal: where a migrate step's inverse operations live.

Side tables in the target database itself, written on the run's own
connection: any host that resumes the run reaches them, and Mistral's
rows never leave the database server's security domain.

* ``mdf_revert_steps``: one row per inverse operation, keyed by
  ``(revision, seq)``, with the run that wrote it and the inverse as
  JSON (never a URL or a password: table, column and index names).
* ``mdf_revert_<revision>_<seq>``: a data copy one inverse needs (the
  rows a step deletes, the values it rewrites, a column or table it
  drops), keyed by primary key.

Every entry is written *before* the operation it undoes acts. On
PostgreSQL the step and its entries commit in one transaction; on
MariaDB and SQLite DDL commits at once, so an entry may exist for an
operation that never happened: replay is tolerant (it looks first).
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from mistral_db_flows.revert import names

TABLE = names.TABLE
PREFIX = names.PREFIX

_CREATE = ("CREATE TABLE IF NOT EXISTS %s (revision VARCHAR(32) NOT NULL, "
           "seq INTEGER NOT NULL, run_id VARCHAR(64), "
           "inverse TEXT NOT NULL, PRIMARY KEY (revision, seq))" % TABLE)


# Set on a connection once a step that wrote the journal committed:
# the table is there for the next step, which need not create it again
# (each CREATE is a schema statement: on MariaDB an implicit commit and
# a fence check). Whatever drops the table on that connection, and any
# failed attempt, forgets it.
_READY = "mdf_revert_journal_ready"


def mark_ready(conn: Any) -> None:
    conn.info[_READY] = True


def forget_ready(conn: Any) -> None:
    conn.info.pop(_READY, None)


def exists(conn: Any) -> bool:
    return sa.inspect(conn).has_table(TABLE)


def _entries(conn: Any, revision: str) -> list[tuple[int, dict]]:
    found = conn.execute(sa.text(
        "SELECT seq, inverse FROM %s WHERE revision = :r ORDER BY seq DESC"
        % TABLE), {"r": revision})
    return [(int(seq), json.loads(text)) for seq, text in found]


def entries(conn: Any, revision: str) -> list[tuple[int, dict]]:
    """``(seq, inverse)`` of ``revision``, newest first."""
    if not exists(conn):
        return []
    return _entries(conn, revision)


def revisions(conn: Any) -> list[str]:
    """The revisions that still have entries (a revert not finished)."""
    if not exists(conn):
        return []
    found = conn.execute(sa.text("SELECT DISTINCT revision FROM %s"
                                 % TABLE))
    return sorted(r[0] for r in found)


def side_tables(conn: Any) -> list[str]:
    """The steps' data copies (not populate's journal, which shares the
    prefix but belongs to a populate run)."""
    return sorted(n for n in sa.inspect(conn).get_table_names()
                  if names.is_step_copy(n))


# -- kept for downgrade ----------------------------------------------------

KEPT = names.KEPT
_CREATE_KEPT = ("CREATE TABLE IF NOT EXISTS %s (revision VARCHAR(32) "
                "NOT NULL PRIMARY KEY, run_id VARCHAR(64))" % KEPT)


def kept(conn: Any) -> list[str]:
    """The revisions whose revert data a finished run kept."""
    if not sa.inspect(conn).has_table(KEPT):
        return []
    found = conn.execute(sa.text("SELECT revision FROM %s" % KEPT))
    return sorted(r[0] for r in found)


def keep(conn: Any, revisions: list[str], run_id: str | None) -> None:
    """Mark ``revisions``' entries (and data copies) as kept: no longer
    a revert to finish, but what ``downgrade`` replays."""
    if not revisions:
        return
    conn.execute(sa.text(_CREATE_KEPT))
    have = set(kept(conn))
    for revision in revisions:
        if revision not in have:
            conn.execute(sa.text("INSERT INTO %s (revision, run_id) "
                                 "VALUES (:r, :run)" % KEPT),
                         {"r": revision, "run": run_id})


def unkeep(conn: Any, revision: str) -> None:
    """``revision``'s kept data is used up (or discarded)."""
    if not sa.inspect(conn).has_table(KEPT):
        return
    conn.execute(sa.text("DELETE FROM %s WHERE revision = :r" % KEPT),
                 {"r": revision})
    if not conn.execute(sa.text("SELECT COUNT(*) FROM %s"
                                % KEPT)).scalar():
        conn.execute(sa.text("DROP TABLE %s" % KEPT))


class Journal:
    """What one migrate step records, in the order it acts.

    ``added`` remembers the columns this step added (in this attempt
    or an earlier one, read back from the table): rewriting their
    values needs no copy, since the revert drops them.
    """

    def __init__(self, revision: str, run_id: str | None = None) -> None:
        self.revision = revision
        self.run_id = run_id
        self._seq: int | None = None
        self.added: set[tuple[str, str]] = set()
        self.created: set[str] = set()

    @property
    def started(self) -> bool:
        """Whether this journal made sure its table exists."""
        return self._seq is not None

    def _start(self, conn: Any) -> None:
        if self._seq is not None:
            return
        if not conn.info.get(_READY):
            conn.execute(sa.text(_CREATE))
        self._seq = 0
        for seq, inverse in _entries(conn, self.revision):
            self._seq = max(self._seq, seq)
            self._remember(inverse)

    def _remember(self, inverse: dict) -> None:
        if inverse["op"] == "drop_column":
            self.added.add((inverse["table"], inverse["column"]))
        elif inverse["op"] == "drop_table":
            self.created.add(inverse["table"])

    def is_new(self, conn: Any, table: str, column: str | None = None
               ) -> bool:
        """Whether this step created ``table`` (or added ``column``)."""
        self._start(conn)
        if table in self.created:
            return True
        return column is not None and (table, column) in self.added

    def next_copy(self, conn: Any) -> str:
        """A name for the data copy of the next entry."""
        self._start(conn)
        assert self._seq is not None
        return "%s%s_%d" % (PREFIX, self.revision, self._seq + 1)

    def record(self, conn: Any, inverse: dict) -> None:
        """Write ``inverse`` (before the operation it undoes acts)."""
        self._start(conn)
        assert self._seq is not None
        self._seq += 1
        conn.execute(sa.text(
            "INSERT INTO %s (revision, seq, run_id, inverse) "
            "VALUES (:r, :s, :run, :inv)" % TABLE),
            {"r": self.revision, "s": self._seq, "run": self.run_id,
             "inv": json.dumps(inverse, sort_keys=True)})
        self._remember(inverse)


def forget(conn: Any, revision: str) -> None:
    """Delete ``revision``'s entries and their data copies."""
    forget_many(conn, [revision])


def forget_many(conn: Any, revisions: list[str]) -> None:
    """:func:`forget` for several revisions at once: a run that ended
    well settles all its steps in a few statements, not a few per step.
    """
    forget_ready(conn)
    if not revisions or not exists(conn):
        return
    chosen: Any = sa.bindparam("r", expanding=True)
    found = conn.execute(sa.text(
        "SELECT inverse FROM %s WHERE revision IN :r" % TABLE
    ).bindparams(chosen), {"r": list(revisions)})
    copies = {json.loads(text).get("copy") for (text,) in found}
    live = set(sa.inspect(conn).get_table_names()) if copies - {None} \
        else set()
    for copy in sorted(c for c in copies if c and c in live):
        conn.execute(sa.text("DROP TABLE %s" % copy))
    conn.execute(sa.text("DELETE FROM %s WHERE revision IN :r" % TABLE
                         ).bindparams(chosen), {"r": list(revisions)})
    if not conn.execute(sa.text("SELECT COUNT(*) FROM %s" % TABLE)
                        ).scalar():
        # Nothing more to revert: the schema is Mistral's alone.
        conn.execute(sa.text("DROP TABLE %s" % TABLE))


def discard(conn: Any) -> None:
    """Drop every journal table, kept data included."""
    forget_ready(conn)
    for name in side_tables(conn):
        conn.execute(sa.text("DROP TABLE %s" % name))
    for name in (TABLE, KEPT):
        if sa.inspect(conn).has_table(name):
            conn.execute(sa.text("DROP TABLE %s" % name))
