"""The database server: unreachable, gone mid-run, locked by another
run, or holding a schema object of an unexpected shape."""
from __future__ import annotations

from typing import Any

from mistral_db_flows.exceptions import _base


class DatabaseUnreachable(_base.MistralDbError):
    """The server does not answer, or refuses the credentials.

    ``url`` has its password hidden; ``reason`` is the driver's first
    line, with the password scrubbed should a driver ever echo it.
    """

    exit_code = _base.ExitCode.UNREACHABLE
    url: str
    reason: str
    _template = ("cannot connect to %s: %s; check that the server runs "
                 "and [database] connection is right")

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(self._template % (url, reason))


class ConnectionLost(DatabaseUnreachable):
    """The server ended our session in the middle of a step: it was
    restarted, or an administrator terminated the session."""

    _template = "lost the connection to %s: %s"


# How drivers say that the server ended the session: psycopg2 and
# psycopg in words, PyMySQL and mysqlclient by number (2006 gone away,
# 2013 lost during a query, 1927 killed, 4031 idle too long; PyMySQL's
# InterfaceError 0 is a closed socket).
_LOST_WORDS = ("terminating connection", "server closed the connection",
               "connection already closed", "the connection is closed",
               "no connection to the server",
               "could not receive data from server", "lost connection",
               "server has gone away", "connection was killed")
_LOST_NUMBERS = frozenset({1927, 2006, 2013, 2055, 4031})


def is_connection_lost(exc: object) -> bool:
    """Whether a driver's error, bare or wrapped by SQLAlchemy, says the
    server ended the session (a step failing so exits 3, not 7).

    Decided from the error alone, without importing any driver.
    """
    if getattr(exc, "connection_invalidated", False):
        return True  # SQLAlchemy asked the dialect already
    error = getattr(exc, "orig", None) or exc
    kind = type(error).__name__
    if kind not in ("OperationalError", "InterfaceError"):
        return False
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in _LOST_NUMBERS or (
            args[0] == 0 and kind == "InterfaceError")
    text = str(error).lower()
    return any(words in text for words in _LOST_WORDS)


class SchemaConflict(_base.MistralDbError):
    """An object exists with the name a revision wants, in another shape.

    Re-running a half-applied revision skips objects that already have
    the intended shape; an object of another shape is never accepted
    silently.
    """

    exit_code = _base.ExitCode.SCHEMA_CONFLICT
    kind: str
    name: str
    table: str | None
    expected: str
    found: str

    def __init__(self, kind: str, name: str, table: str | None,
                 expected: str, found: str) -> None:
        self.kind = kind
        self.name = name
        self.table = table
        self.expected = expected
        self.found = found
        where = " on table %s" % table if table and table != name else ""
        super().__init__(
            "%s %s%s exists with another shape: found %s, expected %s; "
            "fix or drop it by hand, then run the upgrade again"
            % (kind, name, where, found, expected))


class LockError(_base.MistralDbError):
    """The run lock could not be taken or was lost (not a timeout)."""

    exit_code = _base.ExitCode.ERROR
    database: str

    def __init__(self, message: str, *, database: str) -> None:
        self.database = database
        super().__init__(message)


class LockTimeout(LockError):
    """Another run holds the database's lock; we waited ``timeout``.

    ``holder`` is the session holding it when the backend can tell (as
    ``LockWaitTimeout.holder``), else None.
    """

    exit_code = _base.ExitCode.LOCKED
    lock: str
    timeout: float
    owner: str
    holder: dict[str, Any] | None

    def __init__(self, *, database: str, lock: str, timeout: float,
                 owner: str, holder: dict[str, Any] | None) -> None:
        self.lock = lock
        self.timeout = timeout
        self.owner = owner
        self.holder = holder
        who = describe_session(holder) if holder else "another run"
        super().__init__(
            "database %s is locked by %s; gave up after %gs. Wait for that "
            "run to finish (or raise the lock timeout) and try again"
            % (database, who, timeout), database=database)


class LockLost(LockError):
    """The run's lock went away (its session was ended): found before
    a step, or before a step committed (its work then rolled back where
    the server can), the run stopped, reverted nothing, and can be
    resumed by running the same command again. ``reason`` is what the
    check found."""

    exit_code = _base.ExitCode.LOCKED
    reason: str

    def __init__(self, *, database: str, reason: str) -> None:
        self.reason = reason
        super().__init__(
            "%s; the run stopped without committing anything more and "
            "reverted nothing: run the same command again to resume it"
            % reason, database=database)


class LockWaitTimeout(_base.MistralDbError):
    """A schema change kept waiting for a lock another session holds
    (``table``; ``holder`` tells who, when the server can) until the
    run's lock timeout was spent (``waited`` seconds). Each attempt
    waited one short statement lock timeout only, so the table's
    readers were never blocked longer than that."""

    exit_code = _base.ExitCode.STEP_FAILED
    database: str
    table: str | None
    holder: dict[str, Any] | None
    waited: float

    def __init__(self, *, database: str, table: str | None,
                 holder: dict[str, Any] | None, waited: float) -> None:
        self.database = database
        self.table = table
        self.holder = holder
        self.waited = waited
        super().__init__(
            "gave up after %.0f s waiting for a lock on %s held by %s: "
            "end that session's transaction (or stop Mistral's services), "
            "or raise [db_manage] lock_timeout"
            % (waited, table or "a table of database %s" % database,
               describe_session(holder) if holder else "another session"))


class OthersConnected(_base.MistralDbError):
    """Other sessions are connected to the database and the run was
    told to refuse then (``refuse_if_connected``); ``sessions`` lists
    them (pid, application, client, since)."""

    exit_code = _base.ExitCode.CONNECTED
    database: str
    sessions: list[dict[str, Any]]

    def __init__(self, *, database: str,
                 sessions: list[dict[str, Any]]) -> None:
        self.database = database
        self.sessions = list(sessions)
        shown = "; ".join(describe_session(s) for s in self.sessions[:3])
        more = len(self.sessions) - 3
        super().__init__(
            "%d other session%s connected to database %s (%s%s); stop "
            "Mistral's services first, or run without "
            "refuse_if_connected" % (
                len(self.sessions), "s are" if len(self.sessions) != 1
                else " is", database, shown,
                ", and %d more" % more if more > 0 else ""))


def describe_session(session: dict[str, Any]) -> str:
    """A session in words: ``pid N (application, client, since T)``
    with what the server told of it (``sessions.describe``'s shape; a
    MySQL client's own process id when the server shows it)."""
    facts = [str(session[key]) for key in ("application", "client")
             if session.get(key) not in (None, "")]
    if session.get("client_pid") is not None:
        facts.append("client pid %s" % session["client_pid"])
    if session.get("since") not in (None, ""):
        facts.append(str(session["since"]))
    text = "pid %s" % session.get("pid", "?")
    return "%s (%s)" % (text, ", ".join(facts)) if facts else text
