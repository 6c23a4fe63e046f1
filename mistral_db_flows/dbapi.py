"""Connections to the target database: the run's, or a new one.

The commands that only read or write rows (``populate``, ``verify`` of
populated rows, the run lock) do not need SQLAlchemy; they get a driver
:class:`Handle` (opened in :mod:`dbhandle`). Inside a run's
:func:`sharing` block (:mod:`run_connection`) every borrower gets that
run's one connection instead of opening its own.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from mistral_db_flows import dbhandle
from mistral_db_flows import migration
from mistral_db_flows import run_connection

# The public names of the connection layer, where callers and embedders
# (docs/api.md) have always found them.
Handle = dbhandle.Handle
parse = dbhandle.parse
sharing = run_connection.sharing
active = run_connection.active


def connect(url: str, *, private: bool = False) -> Handle:
    """Open ``url`` (or lend the :func:`sharing` block's connection,
    unless ``private``); raises BadUrl, DriverMissing or
    DatabaseUnreachable."""
    run = None if private else active(url)
    return run.handle() if run is not None else dbhandle.open_new(url)


@contextlib.contextmanager
def sqlalchemy_connection(url: str) -> Iterator[Any]:
    """A SQLAlchemy Connection to ``url`` for the block.

    In a :func:`sharing` block, the run's (left open; discarded when the
    block raises); otherwise a new one, closed afterwards. Work not
    committed in the block is rolled back: no snapshot or lock stays
    behind for a later step (a restore waits for locks).
    """
    run = active(url)
    conn = run.sqlalchemy() if run is not None else migration.connect(url)
    try:
        yield conn
        if conn.in_transaction():
            conn.rollback()
    except BaseException:
        if run is not None:
            run.discard()
        raise
    finally:
        if run is None:
            dbhandle.close_sqlalchemy(conn)


def open_server(url: str) -> Handle | None:
    """psycopg2 or PyMySQL directly; None when SQLAlchemy must open
    ``url`` (another driver, options only it translates, the driver
    missing)."""
    run = active(url)
    if run is not None:
        return run.handle()
    parsed = dbhandle.parse(url)
    if parsed.backend == "sqlite" or parsed.direct() is None:
        return None
    return dbhandle.open_server(parsed, url)

