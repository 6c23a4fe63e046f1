"""The lock's dedicated server session, shared by PostgreSQL and
MariaDB/MySQL."""
from __future__ import annotations

import contextlib
from typing import Any

from mistral_db_flows import exceptions
from mistral_db_flows.locking import base


class ServerLock(base.Lock):
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

    def _rows(self, statement: str, params: tuple = ()) -> list:
        """The first row of one statement as a list (for
        :func:`sessions.find`, which asks who holds the lock)."""
        row = self._query(statement, params)
        return [] if row is None else [row]

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

    def acquire(self, timeout: float,
                on_wait: base.OnWait | None = None) -> None:
        self._connect()
        try:
            if self.identity is None:
                from mistral_db_flows import identity

                self.named(identity.of_handle(self.handle))
            self._take(timeout, on_wait)
        except exceptions.LockError:
            self.release()
            raise
        except self._errors as exc:
            self.release()
            raise self._error("cannot take the lock", exc) from None
        except BaseException:
            self.release()
            raise

    def _take(self, timeout: float, on_wait: base.OnWait | None) -> None:
        """Take the lock on the open session, else raise LockTimeout."""
        raise NotImplementedError

    def _unlock(self) -> None:
        raise NotImplementedError

    def _still_held(self) -> tuple[str, tuple]:
        """A query whose one value is true while this session holds the
        lock."""
        raise NotImplementedError

    def check(self) -> None:
        if self.handle is None:
            raise self._lost()
        statement, params = self._still_held()
        try:
            held = self._value(statement, params)
        except self._errors as exc:
            raise self._error("lost the lock", exc) from None
        if not held:
            raise self._lost()


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
