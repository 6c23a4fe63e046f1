"""Server sessions: ours (to cancel what they run) and everyone else's.

``dbapi`` tracks every connection it opens here with the session's id
on the server (PostgreSQL's backend pid, MariaDB's connection id), read
from the driver without a round trip. That gives two things:

* :func:`cancel_statements` stops, from another thread, whatever our
  sessions are running or waiting for on the server (a queued
  ``ALTER TABLE``, a wait for the run lock), so that a signalled run
  leaves nothing of ours queued: ``pg_cancel_backend`` or
  ``KILL QUERY`` sent on a new connection, ``interrupt()`` for SQLite;
* :func:`others` lists the sessions connected to a database that are
  not ours (the run's, its lock's), which Mistral's services should
  not have open while its schema changes;
* :func:`find` is the one place that asks who a session is, for that
  list, for the holder of a table lock (:mod:`lockwait`) and for the
  holder of another run's lock (:mod:`locking`), all in one shape.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Any, Callable, Sequence

_MAX_LISTED = 50


@dataclasses.dataclass(frozen=True)
class Tracked:
    """One of our open connections."""

    url: str
    dialect: str
    server_id: int | None
    raw: Any
    # Opens another connection to the same server (to send a cancel).
    opener: Callable[[], Any] | None


_lock = threading.Lock()
_tracked: dict[int, Tracked] = {}


def server_id(raw: Any, dialect: str) -> int | None:
    """The id the server gives the session of driver connection
    ``raw`` (None when the driver does not tell it)."""
    raw = getattr(raw, "dbapi_connection", None) or raw
    try:
        if dialect == "postgresql":
            get = getattr(raw, "get_backend_pid", None)  # psycopg2
            if callable(get):
                return int(get())
            info = getattr(raw, "info", None)  # psycopg 3
            pid = getattr(info, "backend_pid", None)
            return int(pid) if pid else None
        if dialect == "mysql":
            get = getattr(raw, "thread_id", None)  # PyMySQL, mysqlclient
            return int(get()) if callable(get) else None
    except Exception:  # a closed or foreign connection: not cancellable
        return None
    return None


def track(raw: Any, url: str, dialect: str,
          opener: Callable[[], Any] | None = None) -> None:
    """Remember driver connection ``raw`` (to ``url``) until
    :func:`untrack`; ``opener()`` gives a new handle to its server."""
    raw = getattr(raw, "dbapi_connection", None) or raw
    entry = Tracked(url, dialect, server_id(raw, dialect), raw, opener)
    with _lock:
        _tracked[id(raw)] = entry


def untrack(raw: Any) -> None:
    raw = getattr(raw, "dbapi_connection", None) or raw
    with _lock:
        _tracked.pop(id(raw), None)


def our_ids(dialect: str) -> set[int]:
    """The server ids of our open sessions of ``dialect``."""
    with _lock:
        return {t.server_id for t in _tracked.values()
                if t.dialect == dialect and t.server_id is not None}


_CANCEL = {"postgresql": "SELECT pg_cancel_backend(%s)",
           "mysql": "KILL QUERY %s"}


def cancel_statements() -> int:
    """Cancel what each of our sessions is running on its server;
    returns how many were sent a cancel. Safe from any thread."""
    with _lock:
        tracked = list(_tracked.values())
    sent = 0
    by_url: dict[str, list[Tracked]] = {}
    for entry in tracked:
        if entry.dialect == "sqlite":
            with contextlib.suppress(Exception):
                entry.raw.interrupt()
                sent += 1
        elif entry.server_id is not None and entry.dialect in _CANCEL \
                and entry.opener is not None:
            by_url.setdefault(entry.url, []).append(entry)
    for entries in by_url.values():
        try:
            handle = entries[0].opener()  # type: ignore[misc]
        except Exception:  # the server is gone: nothing left queued
            continue
        try:
            for entry in entries:
                # KILL takes no placeholder: the id is our own int.
                cur = handle.execute(_CANCEL[entry.dialect]
                                     % int(entry.server_id or 0))
                cur.close()
                sent += 1
            handle.commit()
        except Exception:  # already ended: nothing to cancel
            pass
        finally:
            with contextlib.suppress(Exception):
                handle.close()
    return sent


# -- who a session is -----------------------------------------------------

# Every question "who is that session" (the others connected to the
# database, the holder of a table lock a step waits for, the holder of
# another run's lock) selects the same five facts in this order, and
# describe() gives them one shape: pid (the server's id of the session:
# what pg_terminate_backend or KILL takes), application, client,
# user, since.
def _pg(since: str, rest: str, pid: str = "a.pid") -> str:
    return ("SELECT %s, a.application_name, host(a.client_addr), "
            "a.usename, %s %s" % (pid, since, rest))


def _my(since: str, rest: str, pid: str = "p.id") -> str:
    return "SELECT %s, NULL, p.host, p.user, %s %s" % (pid, since, rest)


_THIS_DATABASE = ("(SELECT oid FROM pg_database "
                  "WHERE datname = current_database())")

_WHO = {
    ("connected", "postgresql"): _pg(
        "a.backend_start",
        "FROM pg_stat_activity a WHERE a.datname = current_database() "
        "AND a.pid <> pg_backend_pid() "
        "AND a.backend_type = 'client backend' ORDER BY a.backend_start"),
    ("connected", "mysql"): _my(
        "NULL",
        "FROM information_schema.processlist p WHERE p.db = DATABASE() "
        "AND p.id <> CONNECTION_ID() ORDER BY p.time DESC"),
    # Since when: the holder's transaction, which holds the lock.
    ("table_lock", "postgresql"): _pg(
        "coalesce(a.xact_start, a.backend_start)",
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.granted AND l.locktype = 'relation' "
        "AND l.pid <> pg_backend_pid() "
        "AND l.database = " + _THIS_DATABASE + " "
        "AND (%s IS NULL OR l.relation = to_regclass(%s)) "
        "ORDER BY a.xact_start NULLS LAST LIMIT 20"),
    # MariaDB shows metadata locks only with the metadata_lock_info
    # plugin, not loaded by default: the sessions with an open
    # transaction, this database's first, are who can hold one.
    ("table_lock", "mysql"): _my(
        "t.trx_started",
        "FROM information_schema.innodb_trx t "
        "JOIN information_schema.processlist p "
        "ON p.id = t.trx_mysql_thread_id "
        "WHERE p.id <> CONNECTION_ID() "
        "ORDER BY p.db = DATABASE() DESC, t.trx_started LIMIT 20"),
    # A run's lock (see locking/): PostgreSQL's advisory lock by its two
    # keys, MariaDB's GET_LOCK by its name.
    ("run_lock", "postgresql"): _pg(
        "a.backend_start",
        "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.database = " + _THIS_DATABASE + " "
        "AND l.classid::bigint = %s AND l.objid::bigint = %s "
        "AND l.objsubid = 1", pid="l.pid"),
    ("run_lock", "mysql"): _my(
        "NULL",
        "FROM (SELECT IS_USED_LOCK(%s) AS id) l "
        "LEFT JOIN information_schema.processlist p ON p.id = l.id "
        "WHERE l.id IS NOT NULL", pid="l.id"),
}

# The client process's pid, which PyMySQL and libmysqlclient send on
# connecting; only the performance schema shows it (on by default in
# MySQL, off by default in MariaDB: then it stays unknown).
_MYSQL_CLIENT_PID = (
    "SELECT attr_value FROM performance_schema.session_connect_attrs "
    "WHERE processlist_id = %s AND attr_name = '_pid'")

Rows = Callable[[str, tuple], Sequence[Sequence[Any]]]


def find(rows: Rows, dialect: str, kind: str, params: tuple = (), *,
         skip_ours: bool = True) -> list[dict[str, Any]]:
    """The sessions of ``kind`` (``connected``, ``table_lock``,
    ``run_lock``), each as :func:`describe` gives it; ``rows(statement,
    params)`` runs a query on a connection to the database. Empty for a
    dialect with no server to ask (SQLite)."""
    statement = _WHO.get((kind, dialect))
    if statement is None:
        return []
    ours = our_ids(dialect) if skip_ours else set()
    found = []
    for row in rows(statement, params):
        if row[0] in ours:
            continue
        found.append(describe(*row))
        if len(found) >= _MAX_LISTED:
            break
    if kind == "run_lock" and dialect == "mysql":
        for session in found:
            _add_client_pid(rows, session)
    return found


def _add_client_pid(rows: Rows, session: dict[str, Any]) -> None:
    try:
        value = next(iter(rows(_MYSQL_CLIENT_PID, (session["pid"],))),
                     (None,))[0]
        if value is not None:
            session["client_pid"] = int(value)
    except Exception:  # no performance schema, or no right to read it
        pass


def others(handle: Any) -> list[dict[str, Any]]:
    """The other sessions connected to ``handle``'s database, oldest
    first, without ours; empty for SQLite (nothing to ask)."""
    return find(handle.rows, handle.dialect, "connected")


def describe(pid: Any, application: Any, client: Any, user: Any,
             since: Any) -> dict[str, Any]:
    """One session's facts, as :func:`exceptions.describe_session`
    words them: the client without its port (a port tells nobody which
    service it is)."""
    if client and ":" in str(client) and not str(client).startswith("["):
        host, _, port = str(client).rpartition(":")
        client = host if port.isdigit() else client
    return {"pid": int(pid), "application": application or None,
            "client": client or None, "user": user or None,
            "since": since.isoformat(timespec="seconds")
            if hasattr(since, "isoformat") else since}


_WARN_AT_MOST = 5


def check_others(handle: Any, database: str, *, refuse: bool,
                 report: Callable[[str], None]) -> list[dict[str, Any]]:
    """Before a run changes ``database`` (``handle`` connected to it):
    the other sessions connected to it, each told to ``report`` (a few
    at most); with ``refuse``, any of them is
    :class:`exceptions.OthersConnected`."""
    from mistral_db_flows import exceptions

    found = others(handle)
    if found and refuse:
        raise exceptions.OthersConnected(database=database,
                                         sessions=found)
    if found:
        report("%d other session%s connected to database %s: Mistral's "
               "services should be stopped while its schema changes"
               % (len(found), "s are" if len(found) != 1 else " is",
                  database))
    for session in found[:_WARN_AT_MOST]:
        report("connected: %s" % exceptions.describe_session(session))
    if len(found) > _WARN_AT_MOST:
        report("connected: and %d more" % (len(found) - _WARN_AT_MOST))
    return found
