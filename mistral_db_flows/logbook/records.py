"""What the logbook records, and the local file that holds them.

A run is a TaskFlow flow detail whose meta carries our facts
(``mdf_state``, ``started``, ...); TaskFlow's path-based backends keep
books, flow details and atom details at the paths below. The local
logbook is one SQLite table of those records (written by
``logbook.sqlite_backend``, which takes its paths from here):
``path``, ``parent`` (the path above it) and ``value`` (the record as
JSON, NULL for a link).

``status`` reads the file here, without TaskFlow: importing it costs a
third of a second. So does nothing else in this module: even sqlite3 is
imported when a file is opened.
"""
from __future__ import annotations

import json
import os
import posixpath
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

from mistral_db_flows import states

if TYPE_CHECKING:
    import sqlite3

# Keys of a run's flow_detail.meta.
STATE = "mdf_state"  # a states.RunState value
STARTED = "started"  # time.time() when the run was recorded

# TaskFlow's path-based layout (taskflow.persistence.path_based), which
# the local backend writes at exactly these paths.
BOOKS = "/books"
FLOW_DETAILS = "/flow_details"
ATOM_DETAILS = "/atom_details"

TABLE = "mdf_logbook"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS %s ("
    " path TEXT PRIMARY KEY,"
    " parent TEXT NOT NULL,"
    " value TEXT)" % TABLE,  # JSON; NULL marks a link
    "CREATE INDEX IF NOT EXISTS %s_parent ON %s (parent)" % (TABLE, TABLE),
)

Run = TypeVar("Run")


def run_state(meta: dict | None) -> states.RunState | None:
    """The state a run's meta records (None: none, or unknown)."""
    return states.RunState.recorded((meta or {}).get(STATE))


def resumable(meta: dict | None) -> bool:
    """The same command continues this run."""
    state = run_state(meta)
    return state is not None and state.resumable


def newest_resumable(runs: Iterable[tuple[dict | None, Run]]
                     ) -> Run | None:
    """Of ``(meta, run)`` pairs, the newest run that can be resumed."""
    found = [((meta or {}).get(STARTED, 0), run) for meta, run in runs
             if resumable(meta)]
    if not found:
        return None
    return max(found, key=lambda f: f[0])[1]


def open_file(filename: str, *, readonly: bool = False
              ) -> sqlite3.Connection:
    """A connection to the logbook file (created 0600 when missing)."""
    import sqlite3

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


def _under(conn: sqlite3.Connection, parent: str, kind: str,
           read: Callable[[Any], Any]) -> list[tuple[str, Any]]:
    """The records a book or flow detail links to, each ``read``."""
    return [(uuid_, read(item(conn, posixpath.join(kind, uuid_))))
            for uuid_ in children(conn, parent)]


def peek_interrupted(path: str, *books: str) -> dict | None:
    """The newest resumable run in the ``books`` of the local logbook
    (a database's own, and the one an earlier build named otherwise).

    Returns the run's meta plus ``atoms`` (step name -> TaskFlow atom
    state) and ``results`` (step name -> what it returned), or None: no file, no such book, no such run.
    """
    import sqlite3

    if not os.path.exists(path):
        return None
    conn = open_file(path, readonly=True)
    try:
        metas = {uuid_: meta for book in books
                 for uuid_, meta in _under(
                     conn, posixpath.join(BOOKS, book), FLOW_DETAILS,
                     lambda fd: fd.get("meta") or {})}
        fd_uuid = newest_resumable((meta, uuid_)
                                   for uuid_, meta in metas.items())
        if fd_uuid is None:
            return None
        meta = metas[fd_uuid]
        atoms = _under(conn, posixpath.join(FLOW_DETAILS, fd_uuid),
                       ATOM_DETAILS, lambda ad: ad["atom"])
        meta["atoms"] = {atom["name"]: atom["state"] for _, atom in atoms}
        meta["results"] = {atom["name"]: atom.get("results")
                           for _, atom in atoms}
        return meta
    except (sqlite3.Error, KeyError):
        return None  # no table or record yet: nothing was recorded
    finally:
        conn.close()
