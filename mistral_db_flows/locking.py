"""One run at a time per database.

``hold(url, timeout=..., owner=...)`` holds a lock for the whole run that
the operating system or the server releases when the process dies, so it
can never go stale after a kill:

* PostgreSQL: a session advisory lock on a dedicated connection;
* MariaDB/MySQL: ``GET_LOCK`` on a dedicated connection;
* SQLite: ``flock`` on ``<database file>.lock``.

The lock is named after the database's identity (``identity``: asked
of the server on the lock's own session, the SQLite file's real path),
never credentials: two URLs that reach the same database through
different host names, ports, drivers or users exclude each other.

None of it imports SQLAlchemy for a plain URL (``dbapi`` opens the
driver itself): every guarded run takes the lock, ``populate`` included,
and the import alone would cost it about a tenth of a second.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import math
import os
import socket
import time
from typing import Any, Iterator

from mistral_db_flows import exceptions

_PREFIX = "mistral-db-flows"
_MYSQL_NAME_MAX = 64
_PG_APP_MAX = 63
_PG_MAX_MS = 2 ** 31 - 1
_MYSQL_MAX_WAIT_TIMEOUT = 31536000
_POLL = 0.05


def _owner_tag(owner: str) -> str:
    return "%s (pid %d on %s)" % (owner, os.getpid(), socket.gethostname())


class _Lock:
    """What every backend offers; ``hold`` yields one of these."""

    backend = ""

    def __init__(self, url: str, database: str | None, owner: str) -> None:
        self.url = url
        self.owner = owner
        self.database = database or ""
        # Known once the server was asked (see identity), or given.
        self.identity: str | None = None
        self.name = ""

    def named(self, identity: str) -> None:
        """Name the lock after the database's ``identity``."""
        self.identity = identity
        self.name = "%s:%s" % (_PREFIX, identity)

    def acquire(self, timeout: float) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise LockError if the lock was lost (e.g. connection cut)."""

    def _timeout(self, timeout: float,
                 holder: dict[str, Any] | None) -> exceptions.LockTimeout:
        return exceptions.LockTimeout(
            database=self.database, lock=self.name, timeout=timeout,
            owner=self.owner, holder=holder)


class _ServerLock(_Lock):
    """A lock living in a dedicated server session.

    The session is a plain DB-API connection (``dbapi.connect``), not
    SQLAlchemy: importing SQLAlchemy costs more than a whole ``populate``
    may. It runs in autocommit mode so that it never sits idle in a
    transaction for the length of the run; should a driver not offer
    autocommit, every statement is committed (or rolled back) at once.
    """

    def __init__(self, url: str, database: str | None, owner: str) -> None:
        super().__init__(url, database, owner)
        self.handle: Any = None
        self._autocommit = False
        # The driver's DB-API error class, known once connected.
        self._errors: tuple[type[BaseException], ...] = ()

    def _connect(self) -> Any:
        from mistral_db_flows import dbapi

        try:
            handle = dbapi.connect(self.url, private=True)
        except exceptions.DatabaseUnreachable as exc:
            raise exceptions.LockError(
                "cannot connect to take the lock on database %s: %s"
                % (self.database, exc.reason),
                database=self.database) from None
        self.handle = handle
        # Through SQLAlchemy, conn is a pool proxy around the driver's.
        raw = getattr(handle.conn, "dbapi_connection", None)
        raw = handle.conn if raw is None else raw
        self._errors = handle.driver_errors() or (Exception,)
        self._autocommit = _set_autocommit(raw)
        return handle

    def _query(self, statement: str, params: tuple = (), *,
               fetch: bool = True) -> Any:
        """Run one statement; its first row (None without one)."""
        handle = self.handle
        try:
            cur = handle.execute(statement, params)
            try:
                row = cur.fetchone() if fetch else None
            finally:
                cur.close()
            if not self._autocommit:
                handle.commit()
        except self._errors:
            if not self._autocommit:
                with contextlib.suppress(Exception):
                    handle.rollback()
            raise
        return row

    def _value(self, statement: str, params: tuple = ()) -> Any:
        row = self._query(statement, params)
        return row[0] if row is not None else None

    def _error(self, what: str, exc: BaseException) -> exceptions.LockError:
        from mistral_db_flows import urls

        text = urls.first_line(exc, self.url) if str(exc).strip() \
            else type(exc).__name__
        return exceptions.LockError("%s on database %s: %s"
                                    % (what, self.database, text),
                                    database=self.database)

    def _lost(self) -> exceptions.LockError:
        return exceptions.LockError(
            "lost the lock on database %s" % self.database,
            database=self.database)

    def release(self) -> None:
        # Closing the session releases the lock on the server.
        handle = self.handle
        if handle is None:
            return
        try:
            with contextlib.suppress(Exception):
                self._unlock()
        finally:
            self.handle = None
            with contextlib.suppress(Exception):
                handle.close()

    def acquire(self, timeout: float) -> None:
        self._connect()
        try:
            if self.identity is None:
                from mistral_db_flows import identity

                self.named(identity.of_handle(self.handle))
            self._take(timeout)
        except exceptions.LockError:
            self.release()
            raise
        except self._errors as exc:
            self.release()
            raise self._error("cannot take the lock", exc) from None
        except BaseException:
            self.release()
            raise

    def _take(self, timeout: float) -> None:
        """Take the lock on the open session, else raise LockTimeout."""
        raise NotImplementedError

    def _unlock(self) -> None:
        raise NotImplementedError


def _set_autocommit(raw: Any) -> bool:
    """Switch a DB-API connection to autocommit; False if it cannot."""
    try:
        switch = raw.autocommit
        if callable(switch):       # PyMySQL, mysqlclient
            switch(True)
        else:                      # psycopg2, psycopg, pg8000 ...
            raw.autocommit = True
    except Exception:  # no such extension: commit after each statement
        return False
    return True


class _PostgresLock(_ServerLock):
    backend = "postgresql"

    key = key_high = key_low = 0

    def named(self, identity: str) -> None:
        super().named(identity)
        # Advisory locks are per database already; the name keeps ours
        # apart from other applications' keys.
        digest = hashlib.sha256(self.name.encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        self.key_high = (self.key >> 32) & 0xFFFFFFFF
        self.key_low = self.key & 0xFFFFFFFF

    def _take(self, timeout: float) -> None:
        self._query("SELECT set_config('application_name', %s, false), "
                    "set_config('statement_timeout', '0', false)",
                    (_owner_tag(self.owner)[:_PG_APP_MAX],))
        # The session must outlive a long run (the setting exists
        # from PostgreSQL 14 on).
        with contextlib.suppress(*self._errors):
            self._query(
                "SELECT set_config('idle_session_timeout', '0', false)")
        if timeout > 0:
            got = self._wait(timeout)
        else:
            got = self._value("SELECT pg_try_advisory_lock(%s)",
                              (self.key,))
        if not got:
            raise self._timeout(timeout, self._holder())

    def _wait(self, timeout: float) -> bool:
        """Queue on the lock server-side: taken the moment it is free."""
        # lock_timeout is an int of milliseconds; 0 means for ever.
        limit = "0" if timeout * 1000 >= _PG_MAX_MS else "%dms" % max(
            1, math.ceil(timeout * 1000))
        self._query("SELECT set_config('lock_timeout', %s, false)", (limit,))
        try:
            self._query("SELECT pg_advisory_lock(%s)", (self.key,))
        except self._errors as exc:
            code = getattr(exc, "pgcode", None) or getattr(
                exc, "sqlstate", None)
            if code != "55P03":  # lock_not_available
                raise
            return False
        self._query("SELECT set_config('lock_timeout', '0', false)")
        return True

    def _holder(self) -> dict[str, Any] | None:
        row = self._query(
            "SELECT l.pid, a.application_name, a.usename, "
            "host(a.client_addr) AS client, a.backend_start "
            "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database "
            "                  WHERE datname = current_database()) "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s "
            "AND l.objsubid = 1",
            (self.key_high, self.key_low))
        if row is None:
            return None
        pid, application, user, client, since = row
        return {"application": application, "backend_pid": pid,
                "user": user, "client": client,
                "connected_since": since.isoformat() if since else None}

    def _unlock(self) -> None:
        self._query("SELECT pg_advisory_unlock(%s)", (self.key,))

    def check(self) -> None:
        if self.handle is None:
            raise self._lost()
        try:
            held = self._value(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND granted "
                "AND classid::bigint = %s AND objid::bigint = %s "
                "AND objsubid = 1",
                (self.key_high, self.key_low))
        except self._errors as exc:
            raise self._error("lost the lock", exc) from None
        if not held:
            raise self._lost()


class _MysqlLock(_ServerLock):
    backend = "mysql"

    def named(self, identity: str) -> None:
        super().named(identity)
        # GET_LOCK names are server-wide, hence the database in it; they
        # are limited to 64 characters, which an identity may pass.
        if len(self.name) > _MYSQL_NAME_MAX:
            self.name = "%s:%s" % (_PREFIX, hashlib.sha256(
                identity.encode()).hexdigest()[:40])

    def _take(self, timeout: float) -> None:
        # The session must outlive a long run; the server would
        # otherwise drop it (and the lock) after wait_timeout.
        self._query("SET SESSION wait_timeout = %d"
                    % _MYSQL_MAX_WAIT_TIMEOUT, fetch=False)
        got = self._value("SELECT GET_LOCK(%s, %s)",
                          (self.name, min(max(0.0, timeout),
                                          _MYSQL_MAX_WAIT_TIMEOUT)))
        if got is None:
            raise exceptions.LockError(
                "GET_LOCK failed on database %s" % self.database,
                database=self.database)
        if not got:
            raise self._timeout(timeout, self._holder())

    def _holder(self) -> dict[str, Any] | None:
        holder = self._value("SELECT IS_USED_LOCK(%s)", (self.name,))
        if holder is None:
            return None
        info: dict[str, Any] = {"connection_id": int(holder)}
        pid = self._client_pid(holder)
        if pid is not None:
            info["pid"] = pid
        row = self._query(
            "SELECT user, host, time FROM information_schema.processlist "
            "WHERE id = %s", (holder,))
        if row is not None:
            info.update({"user": row[0], "client": row[1],
                         "idle_seconds": row[2]})
        return info

    def _client_pid(self, connection_id: Any) -> int | None:
        """The holder's process id, from the ``_pid`` attribute its
        client library sent on connecting (PyMySQL and libmysqlclient
        do). Only the performance schema shows it: on by default in
        MySQL, off by default in MariaDB (then the pid stays unknown)."""
        try:
            value = self._value(
                "SELECT attr_value FROM "
                "performance_schema.session_connect_attrs "
                "WHERE processlist_id = %s AND attr_name = '_pid'",
                (connection_id,))
        except self._errors:
            return None
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    def _unlock(self) -> None:
        self._query("SELECT RELEASE_LOCK(%s)", (self.name,))

    def check(self) -> None:
        if self.handle is None:
            raise self._lost()
        try:
            mine = self._value("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()",
                               (self.name,))
        except self._errors as exc:
            raise self._error("lost the lock", exc) from None
        if not mine:
            raise self._lost()


class _FileLock(_Lock):
    backend = "sqlite"

    def __init__(self, url: str, database: str | None, owner: str) -> None:
        super().__init__(url, database, owner)
        from mistral_db_flows import identity
        from mistral_db_flows import urls

        parsed = urls.parse(url)
        path = parsed.sqlite_path
        if path is None:
            raise exceptions.LockError(
                "cannot lock an in-memory SQLite database: give a file "
                "path", database=database or "")
        self.named(identity.of_sqlite(parsed))
        self.database = os.path.realpath(path)
        self.path = self.database + ".lock"
        self.name = self.path
        self.fd: int | None = None

    def named(self, identity: str) -> None:
        # The file's real path is all of a SQLite database's identity.
        self.identity = identity

    def acquire(self, timeout: float) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise exceptions.LockError(
                "cannot create the lock file %s: %s"
                % (self.path, exc.strerror),
                database=self.database) from None
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise self._timeout(timeout, self._holder()) from None
                time.sleep(_POLL)
        self.fd = fd
        record = json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "owner": self.owner,
            "since": datetime.datetime.now(
                datetime.timezone.utc).isoformat(timespec="seconds")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)

    def _holder(self) -> dict[str, Any] | None:
        try:
            with open(self.path, encoding="utf-8") as lock_file:
                data = json.loads(lock_file.read() or "null")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


_BACKENDS = {"postgresql": _PostgresLock, "mysql": _MysqlLock,
             "sqlite": _FileLock}


def lock_for(url: str, owner: str, *,
             identity: str | None = None) -> _Lock:
    """The (not yet taken) lock of the database at ``url``; without
    its ``identity``, the lock's session asks the server for it."""
    from mistral_db_flows import dbapi

    parsed = dbapi.parse(url)
    if parsed.backend not in _BACKENDS:
        raise exceptions.LockError(
            "cannot lock a %s database" % parsed.backend,
            database=parsed.database or "")
    lock = _BACKENDS[parsed.backend](url, parsed.database, owner)
    if identity is not None and lock.identity is None:
        lock.named(identity)
    return lock


@contextlib.contextmanager
def hold(url: str, *, timeout: float, owner: str,
         identity: str | None = None) -> Iterator[_Lock]:
    """Hold the database's lock for the body; wait up to ``timeout``
    seconds for another run to finish, else raise ``exceptions.LockTimeout``.

    ``owner`` says what this run is (e.g. ``"upgrade head"``); others
    waiting for the lock see it with our pid and host when the backend
    can show it. The lock's ``identity`` is the database's (see
    ``identity``), asked on the lock's session unless given.
    """
    lock = lock_for(url, owner, identity=identity)
    lock.acquire(timeout)
    try:
        yield lock
    finally:
        lock.release()


def held_by(url: str, *, identity: str | None = None
            ) -> dict[str, Any] | None:
    """Who holds the database's lock right now (None: nobody).

    Takes the lock without waiting and gives it back at once; when
    another run holds it, returns what the backend tells of that run
    (an empty dict when it tells nothing).
    """
    try:
        with hold(url, timeout=0, owner="status", identity=identity):
            return None
    except exceptions.LockTimeout as exc:
        return exc.holder or {}

