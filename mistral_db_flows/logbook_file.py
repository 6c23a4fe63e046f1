"""The local logbook's file format, readable without TaskFlow.

One SQLite table of TaskFlow path-based records (see
``mistral_db_flows.sqlite_logbook``): ``path`` (e.g.
``/flow_details/<uuid>``), ``parent`` (the path above it) and ``value``
(the record as JSON, NULL for a link). ``status`` reads it directly:
TaskFlow costs a third of a second to import.
"""
from __future__ import annotations

import json
import os
import posixpath
import sqlite3
from typing import Any

TABLE = "mdf_logbook"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS %s ("
    " path TEXT PRIMARY KEY,"
    " parent TEXT NOT NULL,"
    " value TEXT)" % TABLE,  # JSON; NULL marks a link
    "CREATE INDEX IF NOT EXISTS %s_parent ON %s (parent)" % (TABLE, TABLE),
)


def open_file(filename: str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the logbook file (created 0600 when missing)."""
    if readonly:
        from urllib import parse

        return sqlite3.connect("file:%s?mode=ro" % parse.quote(filename),
                               uri=True, timeout=30)
    folder = os.path.dirname(filename) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if not os.path.exists(filename):
        os.close(os.open(filename, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(filename, timeout=30, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def children(conn: sqlite3.Connection, path: str) -> list[str]:
    """Names directly under ``path``, oldest first."""
    rows = conn.execute("SELECT path FROM %s WHERE parent = ? ORDER BY "
                        "rowid" % TABLE, (path,))
    return [posixpath.basename(p) for (p,) in rows]


def item(conn: sqlite3.Connection, path: str) -> Any:
    """The JSON stored at ``path``; KeyError when there is none."""
    row = conn.execute("SELECT value FROM %s WHERE path = ?" % TABLE,
                       (path,)).fetchone()
    if row is None or row[0] is None:
        raise KeyError(path)
    return json.loads(row[0])
