"""One run at a time per database.

``hold(url, timeout=..., owner=...)`` holds a lock for the whole run that
the operating system or the server releases when the process dies, so it
can never go stale after a kill:

* PostgreSQL: a session advisory lock on a dedicated connection;
* MariaDB/MySQL: ``GET_LOCK`` on a dedicated connection;
* SQLite: ``flock`` on ``<database file>.lock``.

The lock is named after the database (its name, or the SQLite file's
path), never credentials: two URLs that reach the same database through
different host names still exclude each other.
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


class LockError(exceptions.MistralDbError):
    """The lock could not be taken or was lost (not a timeout)."""

    exit_code = 1

    def __init__(self, message: str, *, database: str) -> None:
        self.database = database
        super().__init__(message)


class LockTimeout(LockError):
    """Another run holds the database's lock; we waited ``timeout``.

    ``holder`` describes the other run when the backend can tell (pid,
    application, client, connection id...), else None.
    """

    exit_code = 11

    def __init__(self, *, database: str, lock: str, timeout: float,
                 owner: str, holder: dict[str, Any] | None) -> None:
        self.lock = lock
        self.timeout = timeout
        self.owner = owner
        self.holder = holder
        who = describe_holder(holder) if holder else "another run"
        exceptions.MistralDbError.__init__(
            self,
            "database %s is locked by %s; gave up after %gs. Wait for that "
            "run to finish (or raise the lock timeout) and try again"
            % (database, who, timeout))
        self.database = database


def describe_holder(holder: dict[str, Any]) -> str:
    parts = ["%s %s" % (k.replace("_", " "), v)
             for k, v in holder.items() if v not in (None, "")]
    return "a run with " + ", ".join(parts) if parts else "another run"


def _owner_tag(owner: str) -> str:
    return "%s (pid %d on %s)" % (owner, os.getpid(), socket.gethostname())


class _Lock:
    """What every backend offers; ``hold`` yields one of these."""

    backend = ""

    def __init__(self, u: Any, owner: str) -> None:
        self.url = u
        self.owner = owner
        self.database = u.database or ""
        self.name = "%s:%s" % (_PREFIX, self.database)

    def acquire(self, timeout: float) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise LockError if the lock was lost (e.g. connection cut)."""

    def _timeout(self, timeout: float,
                 holder: dict[str, Any] | None) -> LockTimeout:
        return LockTimeout(database=self.database, lock=self.name,
                           timeout=timeout, owner=self.owner, holder=holder)


class _ServerLock(_Lock):
    """A lock living in a dedicated server session."""

    def __init__(self, u: Any, owner: str) -> None:
        super().__init__(u, owner)
        self.engine: Any = None
        self.conn: Any = None

    def _connect(self) -> Any:
        import sqlalchemy as sa

        self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool,
                                       isolation_level="AUTOCOMMIT")
        try:
            self.conn = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            self.engine.dispose()
            raise self._error("cannot connect to take the lock", exc)
        return self.conn

    def _error(self, what: str, exc: Exception) -> LockError:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()
        text = reason[0] if reason else type(exc).__name__
        if self.url.password:
            text = text.replace(self.url.password, "***")
        return LockError("%s on database %s: %s"
                         % (what, self.database, text),
                         database=self.database)

    def release(self) -> None:
        # Closing the session releases the lock on the server.
        try:
            if self.conn is not None:
                with contextlib.suppress(Exception):
                    self._unlock()
                self.conn.close()
        finally:
            if self.engine is not None:
                self.engine.dispose()
            self.conn = self.engine = None

    def _unlock(self) -> None:
        raise NotImplementedError


class _PostgresLock(_ServerLock):
    backend = "postgresql"

    def __init__(self, u: Any, owner: str) -> None:
        super().__init__(u, owner)
        # Advisory locks are per database already; the name keeps ours
        # apart from other applications' keys.
        digest = hashlib.sha256(self.name.encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        self.key_high = (self.key >> 32) & 0xFFFFFFFF
        self.key_low = self.key & 0xFFFFFFFF

    def acquire(self, timeout: float) -> None:
        import sqlalchemy as sa

        conn = self._connect()
        try:
            conn.execute(sa.text(
                "SELECT set_config('application_name', :a, false), "
                "set_config('statement_timeout', '0', false)"),
                {"a": _owner_tag(self.owner)[:_PG_APP_MAX]})
            # The session must outlive a long run (the setting exists
            # from PostgreSQL 14 on).
            with contextlib.suppress(sa.exc.DBAPIError):
                conn.execute(sa.text(
                    "SELECT set_config('idle_session_timeout', '0', false)"))
            if timeout > 0:
                got = self._wait(conn, timeout)
            else:
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                   {"k": self.key}).scalar()
            if not got:
                holder = self._holder(conn)
                raise self._timeout(timeout, holder)
        except BaseException:
            self.release()
            raise

    def _wait(self, conn: Any, timeout: float) -> bool:
        """Queue on the lock server-side: taken the moment it is free."""
        import sqlalchemy as sa

        # lock_timeout is an int of milliseconds; 0 means for ever.
        limit = "0" if timeout * 1000 >= _PG_MAX_MS else "%dms" % max(
            1, math.ceil(timeout * 1000))
        conn.execute(sa.text("SELECT set_config('lock_timeout', :t, false)"),
                     {"t": limit})
        try:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"),
                         {"k": self.key})
        except sa.exc.DBAPIError as exc:
            orig = exc.orig
            code = getattr(orig, "pgcode", None) or getattr(
                orig, "sqlstate", None)
            if code != "55P03":  # lock_not_available
                raise self._error("cannot take the lock", exc)
            return False
        conn.execute(sa.text("SELECT set_config('lock_timeout', '0', false)"))
        return True

    def _holder(self, conn: Any) -> dict[str, Any] | None:
        import sqlalchemy as sa

        row = conn.execute(sa.text(
            "SELECT l.pid, a.application_name, a.usename, "
            "host(a.client_addr) AS client, a.backend_start "
            "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database "
            "                  WHERE datname = current_database()) "
            "AND l.classid::bigint = :hi AND l.objid::bigint = :lo "
            "AND l.objsubid = 1"),
            {"hi": self.key_high, "lo": self.key_low}).first()
        if row is None:
            return None
        since = row.backend_start
        return {"application": row.application_name, "backend_pid": row.pid,
                "user": row.usename, "client": row.client,
                "connected_since": since.isoformat() if since else None}

    def _unlock(self) -> None:
        import sqlalchemy as sa

        self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"),
                          {"k": self.key})

    def check(self) -> None:
        import sqlalchemy as sa

        try:
            held = self.conn.execute(sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND granted "
                "AND classid::bigint = :hi AND objid::bigint = :lo "
                "AND objsubid = 1"),
                {"hi": self.key_high, "lo": self.key_low}).scalar()
        except sa.exc.DBAPIError as exc:
            raise self._error("lost the lock", exc)
        if not held:
            raise LockError("lost the lock on database %s" % self.database,
                            database=self.database)


class _MysqlLock(_ServerLock):
    backend = "mysql"

    def __init__(self, u: Any, owner: str) -> None:
        super().__init__(u, owner)
        # GET_LOCK names are server-wide, hence the database name in it;
        # they are limited to 64 characters.
        if len(self.name) > _MYSQL_NAME_MAX:
            self.name = "%s:%s" % (_PREFIX, hashlib.sha256(
                self.database.encode()).hexdigest()[:40])

    def acquire(self, timeout: float) -> None:
        import sqlalchemy as sa

        conn = self._connect()
        try:
            # The session must outlive a long run; the server would
            # otherwise drop it (and the lock) after wait_timeout.
            conn.exec_driver_sql("SET SESSION wait_timeout = %d"
                                 % _MYSQL_MAX_WAIT_TIMEOUT)
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"),
                               {"n": self.name,
                                "t": min(max(0.0, timeout),
                                         _MYSQL_MAX_WAIT_TIMEOUT)}).scalar()
            if got is None:
                raise LockError("GET_LOCK failed on database %s"
                                % self.database, database=self.database)
            if not got:
                raise self._timeout(timeout, self._holder(conn))
        except sa.exc.DBAPIError as exc:
            self.release()
            raise self._error("cannot take the lock", exc)
        except BaseException:
            self.release()
            raise

    def _holder(self, conn: Any) -> dict[str, Any] | None:
        import sqlalchemy as sa

        holder = conn.execute(sa.text("SELECT IS_USED_LOCK(:n)"),
                              {"n": self.name}).scalar()
        if holder is None:
            return None
        row = conn.execute(sa.text(
            "SELECT user, host, time FROM information_schema.processlist "
            "WHERE id = :id"), {"id": holder}).first()
        info: dict[str, Any] = {"connection_id": int(holder)}
        if row is not None:
            info.update({"user": row[0], "client": row[1],
                         "idle_seconds": row[2]})
        return info

    def _unlock(self) -> None:
        import sqlalchemy as sa

        self.conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"),
                          {"n": self.name})

    def check(self) -> None:
        import sqlalchemy as sa

        try:
            mine = self.conn.execute(sa.text(
                "SELECT IS_USED_LOCK(:n) = CONNECTION_ID()"),
                {"n": self.name}).scalar()
        except sa.exc.DBAPIError as exc:
            raise self._error("lost the lock", exc)
        if not mine:
            raise LockError("lost the lock on database %s" % self.database,
                            database=self.database)


class _FileLock(_Lock):
    backend = "sqlite"

    def __init__(self, u: Any, owner: str) -> None:
        super().__init__(u, owner)
        path = u.database or ""
        if path in ("", ":memory:") or path.startswith("file:"):
            raise LockError("cannot lock an in-memory or URI SQLite "
                            "database: give a file path",
                            database=path)
        self.database = os.path.realpath(path)
        self.path = self.database + ".lock"
        self.name = self.path
        self.fd: int | None = None

    def acquire(self, timeout: float) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LockError("cannot create the lock file %s: %s"
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
             "mariadb": _MysqlLock, "sqlite": _FileLock}


def lock_for(url: str, owner: str) -> _Lock:
    """The (not yet taken) lock of the database at ``url``."""
    from sqlalchemy.engine import url as sa_url

    u = sa_url.make_url(url)
    backend = u.get_backend_name()
    if backend not in _BACKENDS:
        raise LockError("cannot lock a %s database" % backend,
                        database=u.database or "")
    return _BACKENDS[backend](u, owner)


@contextlib.contextmanager
def hold(url: str, *, timeout: float, owner: str) -> Iterator[_Lock]:
    """Hold the database's lock for the body; wait up to ``timeout``
    seconds for another run to finish, else raise ``LockTimeout``.

    ``owner`` says what this run is (e.g. ``"upgrade head"``); others
    waiting for the lock see it with our pid and host when the backend
    can show it.
    """
    lock = lock_for(url, owner)
    lock.acquire(timeout)
    try:
        yield lock
    finally:
        lock.release()
