"""The run lock as a fence on the run's connection.

A run's lock lives on its own session, which can be ended while the
run goes on (an administrator, a proxy); another run may then take it.
So nothing the run changes may commit once the lock is gone: the run's
SQLAlchemy connection calls the run's check before every commit
(SQLAlchemy dispatches the ``commit`` event before the driver's
commit) and, on MySQL/MariaDB, whose schema statements commit by
themselves, before every changing statement. The check raises to stop
the commit (see ``guarding.Guard.fence``).
"""
from __future__ import annotations

from typing import Any, Callable

# Statements that change something: on MySQL schema statements commit
# by themselves, and a write after another run moved the schema may
# fail before the commit could be fenced.
CHANGES = ("ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE", "INSERT",
           "UPDATE", "DELETE", "REPLACE")


def attach(conn: Any, check: Callable[[], None]) -> None:
    """Call ``check()`` before each commit on SQLAlchemy connection
    ``conn``, and on MySQL before each changing statement as well."""
    import sqlalchemy as sa

    sa.event.listen(conn, "commit", lambda _conn: check())
    if conn.dialect.name in ("mysql", "mariadb"):
        def before_change(_conn, _cursor, statement, *args) -> None:
            if statement.lstrip()[:8].upper().startswith(CHANGES):
                check()

        sa.event.listen(conn, "before_cursor_execute", before_change)
