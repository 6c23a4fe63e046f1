"""The run lock as a fence on the run's connection.

A run's lock lives on its own session, which can be ended while the
run goes on (an administrator, a proxy); another run may then take it.
So nothing the run changes may become durable once the lock is gone:
the run's SQLAlchemy connection calls the run's check

* before every commit that has a change to make durable (SQLAlchemy
  dispatches the ``commit`` event before the driver's commit); a
  commit of reads only has nothing to fence;
* on MySQL/MariaDB, before each statement that commits by itself
  (schema statements, and anything not known to be a read or a row
  write); a row write (``INSERT``, ``UPDATE``, ``DELETE``) stays in the
  transaction until a commit or the next schema statement, both fenced;
* after any statement fails, and (:func:`confirm`) before a migrate
  step treats any error as its failure: a write may fail *because*
  another run moved the schema, and that failure must halt the run
  (lock lost), not fail the step and revert another run's work.

The check raises to stop the commit (see ``guarding.Guard.fence``).
Each check is a round trip on the lock's session; checking only where
something becomes durable keeps a step to one check per schema
statement plus one at its commit.
"""
from __future__ import annotations

import re
from typing import Any, Callable

# Statements that only read (or set a session variable): nothing to
# fence. ``SELECT ... INTO`` (PostgreSQL: creates a table) is not one.
_READS = ("SELECT", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "SET")
_SELECT_INTO = re.compile(r"\bINTO\b", re.I)
# Row writes: transactional on every backend, made durable only by a
# commit (or, on MySQL, the implicit commit of a schema statement).
_ROW_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

READ, ROW_WRITE, OTHER = "read", "row write", "other"


def kind(statement: str) -> str:
    """``READ``, ``ROW_WRITE`` or ``OTHER`` (schema statements and
    anything unknown, e.g. ``EXECUTE`` of a prepared schema change)."""
    words = statement.lstrip().lstrip("(").split(None, 1)
    first = words[0].upper() if words else ""
    if first in _READS:
        if first == "SELECT" and _SELECT_INTO.search(statement):
            return OTHER
        return READ
    if first in _ROW_WRITES:
        return ROW_WRITE
    return OTHER


_CHECK = "mdf_fence_check"


def confirm(conn: Any) -> None:
    """Call the check attached to ``conn`` (if any): for code about to
    treat a failure on it as the step's own, which it is not once the
    lock is gone (e.g. Alembic finding ``alembic_version`` moved by the
    run that took the lock over, an error raised without a statement
    failing)."""
    check = conn.info.get(_CHECK)
    if check is not None:
        check()


def attach(conn: Any, check: Callable[[], None]) -> None:
    """Fence SQLAlchemy connection ``conn`` with ``check`` (see the
    module)."""
    import sqlalchemy as sa

    mysql = conn.dialect.name in ("mysql", "mariadb")
    # Whether the open transaction holds a change not yet fenced.
    pending = [False]

    def before_commit(_conn) -> None:
        if pending[0]:
            check()
            pending[0] = False

    def after_rollback(_conn) -> None:
        pending[0] = False

    def before_statement(_conn, _cursor, statement, *args) -> None:
        found = kind(statement)
        if found == READ:
            return
        if mysql and found == OTHER:
            check()
        pending[0] = True

    def on_error(context) -> None:
        # Raising here replaces the statement's error with LockLost's.
        statement = context.statement or ""
        if kind(statement) != READ:
            check()

    conn.info[_CHECK] = check
    sa.event.listen(conn, "commit", before_commit)
    sa.event.listen(conn, "rollback", after_rollback)
    sa.event.listen(conn, "before_cursor_execute", before_statement)
    # handle_error is an engine event; the run's connection has an
    # engine of its own (migration.connect).
    sa.event.listen(conn.engine, "handle_error", on_error)
