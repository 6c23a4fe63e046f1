"""A driver connection (:class:`Handle`) and opening one for a URL.

For a plain URL (the driver Mistral's configs name, no unusual options)
this module opens the driver itself: importing SQLAlchemy costs about a
tenth of a second, a third of what ``populate`` is allowed in all. For
anything else it asks SQLAlchemy for the driver connection, so every
URL SQLAlchemy accepts still works. Statements are written once with
``%s`` placeholders (psycopg, PyMySQL and mysqlclient all take them);
:meth:`Handle.execute` turns them into ``?`` for sqlite3.

Callers get connections through :mod:`dbapi`, which lends a run's own
connection (:mod:`run_connection`) where there is one.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import sys
from typing import Any, Callable, Sequence

from mistral_db_flows import exceptions
from mistral_db_flows import migration
from mistral_db_flows import sessions
from mistral_db_flows import urls


# Callables ``(handle, statement)`` run after each statement a Handle
# sends: instrumentation, as SQLAlchemy's ``after_cursor_execute`` event
# is for its connections (the safety tests' fault plugin uses both to
# kill a run right after a chosen write).
AFTER_EXECUTE: list[Callable[["Handle", str], None]] = []


def _after(handle: "Handle", statement: str) -> None:
    for observer in list(AFTER_EXECUTE):
        observer(handle, statement)


@dataclasses.dataclass
class Handle:
    """One open driver connection and what is needed to talk to it."""

    conn: Any
    dialect: str          # "sqlite", "postgresql" or "mysql"
    qmark: bool           # sqlite3 wants ? instead of %s
    engine: Any = None    # the SQLAlchemy engine when it opened conn

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the cursor."""
        statement = self._native(statement)
        cur = self.conn.cursor()
        cur.execute(statement, tuple(params))
        _after(self, statement)
        return cur

    def executemany(self, statement: str,
                    rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        statement = self._native(statement)
        cur = self.conn.cursor()
        try:
            cur.executemany(statement, [tuple(r) for r in rows])
            _after(self, statement)
        finally:
            cur.close()

    def _native(self, statement: str) -> str:
        """``statement`` in the driver's placeholder style."""
        if self.qmark:
            return statement.replace("%s", "?").replace("%%", "%")
        return statement

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list:
        cur = self.execute(statement, params)
        try:
            return list(cur.fetchall())
        finally:
            cur.close()

    def driver_errors(self) -> tuple[type[Exception], ...]:
        """The driver's DB-API ``Error`` class (empty when unknown).

        PEP 249 puts it at the top of the driver's package (sqlite3.Error,
        psycopg2.Error, pymysql.Error, ...); a connection SQLAlchemy
        pooled is unwrapped first.
        """
        if self.engine is not None:
            error = getattr(self.engine.dialect.loaded_dbapi, "Error", None)
        else:
            raw = getattr(self.conn, "dbapi_connection", None) or self.conn
            package = sys.modules.get(type(raw).__module__.partition(".")[0])
            error = getattr(package, "Error", None)
        if isinstance(error, type) and issubclass(error, Exception):
            return (error,)
        return ()

    def begin(self) -> None:
        """Start a transaction (the server drivers start one implicitly
        with the first statement; sqlite3 runs in autocommit here)."""
        if self.dialect == "sqlite":
            self.conn.execute("BEGIN")

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        sessions.untrack(self.conn)
        try:
            self.conn.close()
        finally:
            if self.engine is not None:
                self.engine.dispose()


def parse(url: str) -> urls.Url:
    """``url`` read (see ``urls``); a URL that cannot be is BadUrl."""
    try:
        return urls.parse(url)
    except urls.UrlError as exc:
        raise exceptions.BadUrl(exc.url, exc.reason) from None


def open_new(url: str) -> Handle:
    """A new connection to ``url``, the driver's own where it can be;
    raises BadUrl, DriverMissing or DatabaseUnreachable."""
    parsed = parse(url)
    direct = parsed.direct()
    if direct is not None and parsed.backend == "sqlite":
        return _sqlite(parsed, url)
    if direct is not None:
        handle = open_server(parsed, url)
        if handle is not None:
            return handle
    return _through_sqlalchemy(url)


def _sqlite(parsed: urls.Url, url: str) -> Handle:
    import sqlite3
    from urllib import parse as url_parse

    path = parsed.database
    if path in (None, "", ":memory:"):
        conn = sqlite3.connect(":memory:", isolation_level=None)
        return Handle(conn, "sqlite", qmark=True)
    try:
        # mode=rw: never create a database file by reading it.
        conn = sqlite3.connect(
            "file:%s?mode=rw" % url_parse.quote(os.path.abspath(path)),
            uri=True, isolation_level=None, timeout=30,
            check_same_thread=False)
    except sqlite3.Error as exc:
        raise exceptions.DatabaseUnreachable(
            urls.masked(url), "%s (%s)" % (exc, path)) from None
    sessions.track(conn, url, "sqlite")
    return Handle(conn, "sqlite", qmark=True)


def open_server(parsed: urls.Url, url: str) -> Handle | None:
    """psycopg2 or PyMySQL opened directly; None when the driver is
    missing (SQLAlchemy then opens ``url`` and says so)."""
    direct = parsed.direct()
    assert direct is not None
    module, kwargs = direct
    try:
        driver = importlib.import_module(module)
    except ImportError:
        return None
    try:
        conn = driver.connect(**kwargs)
    except driver.Error as exc:
        # PyMySQL's message is its second argument (the first a code).
        reason = exc.args[1] if module == "pymysql" and len(exc.args) > 1 \
            else exc
        raise exceptions.DatabaseUnreachable(
            urls.masked(url), urls.first_line(reason, url)) from None
    sessions.track(conn, url, parsed.backend,
                   functools.partial(open_new, url))
    return Handle(conn, parsed.backend, qmark=False)


def _through_sqlalchemy(url: str) -> Handle:
    import sqlalchemy as sa

    engine = migration.engine(url)
    dialect = engine.dialect.name
    dialect = "mysql" if dialect == "mariadb" else dialect
    if engine.dialect.paramstyle not in ("qmark", "format", "pyformat"):
        engine.dispose()
        raise exceptions.BadUrl(
            urls.masked(url),
            "its driver's parameter style (%s) is not supported"
            % engine.dialect.paramstyle)
    driver_error = getattr(engine.dialect.loaded_dbapi, "Error", Exception)
    try:
        conn = engine.raw_connection()
    except (sa.exc.DBAPIError, driver_error) as exc:
        # SQLAlchemy 2.0 wraps the driver's error, 2.1 raises it as is.
        engine.dispose()
        raise exceptions.DatabaseUnreachable(
            urls.masked(url),
            urls.first_line(getattr(exc, "orig", exc), url)) from None
    if dialect == "sqlite":
        conn.dbapi_connection.isolation_level = None
    sessions.track(conn, url, dialect, functools.partial(open_new, url))
    return Handle(conn, dialect, qmark=engine.dialect.paramstyle == "qmark",
                  engine=engine)


def close_sqlalchemy(conn: Any) -> None:
    try:
        conn.close()
    finally:
        conn.engine.dispose()

