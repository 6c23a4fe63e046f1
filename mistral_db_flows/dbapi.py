"""Connections to the target database: plain DB-API, and one per run.

The commands that only read or write rows (``populate``, ``verify`` of
populated rows, the run lock) do not need SQLAlchemy: importing it costs
about a tenth of a second, a third of what ``populate`` is allowed in
all. For a plain URL (the driver Mistral's configs name, no unusual
options) this module opens the driver itself; for anything else it asks
SQLAlchemy for the driver connection, so every URL SQLAlchemy accepts
still works. Statements are written once with ``%s`` placeholders
(psycopg, PyMySQL and mysqlclient all take them); :meth:`Handle.execute`
turns them into ``?`` for sqlite3.

A run enters :func:`sharing` once; in it, its steps borrow one
connection (:class:`RunConnection`) instead of opening their own.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import os
import sys
import threading
from typing import Any, Callable, Iterator, Sequence

from mistral_db_flows import exceptions
from mistral_db_flows import fencing
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


class _LentHandle(Handle):
    """The handle a :class:`RunConnection` lends: ``close`` only ends the
    borrower's transaction (a rollback; commit first to keep work)."""

    owner: RunConnection | None = None

    def commit(self) -> None:
        if self.owner is not None:
            self.owner.before_commit()
        super().commit()

    def close(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # broken: the next borrower gets a new one
            if self.owner is not None:
                self.owner.discard()


class RunConnection:
    """One run's connection to its database, lent to each of its steps.

    A guarded run reads the version, measures the database for its
    backup, migrates, populates and verifies; a new connection costs
    5-25 ms (PyMySQL sets up TLS for each), more than most revisions.
    Entered with :func:`sharing`, it lends in its thread one driver
    :class:`Handle` (:func:`connect`) and one SQLAlchemy Connection
    (:func:`sqlalchemy_connection`), the latter built on the handle's
    driver connection for PostgreSQL and MySQL. SQLite gets a second
    connection: the handle's runs in autocommit, while Alembic's batch
    mode relies on pysqlite opening transactions by itself.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._handle: _LentHandle | None = None
        self._sqlalchemy: Any = None
        # Called before every commit of the run's work (and, on MySQL,
        # before each schema statement, which commits by itself): the
        # run engine's fence, raising when the run lost its lock.
        self.fence: Callable[[], None] | None = None

    def before_commit(self) -> None:
        if self.fence is not None:
            self.fence()

    def handle(self) -> Handle:
        """The driver handle (opened on first use)."""
        if self._handle is None:
            opened = _open(self.url)
            lent = _LentHandle(opened.conn, opened.dialect, opened.qmark,
                               opened.engine)
            lent.owner = self
            self._handle = lent
        return self._handle

    def sqlalchemy(self) -> Any:
        """The SQLAlchemy Connection (opened on first use)."""
        import sqlalchemy as sa

        conn = self._sqlalchemy
        if conn is not None and not (conn.closed or conn.invalidated):
            return conn
        if conn is not None:
            self.discard()  # the driver connection below it went too
        parsed = parse(self.url)
        try:
            handle = None
            if parsed.direct() is not None and parsed.backend != "sqlite":
                handle = self.handle()
            if handle is not None and _same_driver(handle, self.url):
                # StaticPool: the one driver connection, ours to close.
                conn = migration.connect(self.url,
                                         poolclass=sa.pool.StaticPool,
                                         creator=lambda: handle.conn)
            else:
                conn = migration.connect(self.url)
                sessions.track(conn.connection.dbapi_connection, self.url,
                               parsed.backend,
                               functools.partial(_open, self.url))
            fencing.attach(conn, self.before_commit)
        except BaseException:
            self.discard()
            raise
        self._sqlalchemy = conn
        return conn

    def discard(self) -> None:
        """Close what is open; the next use opens anew (after an error
        the connection is not trusted)."""
        conn, self._sqlalchemy = self._sqlalchemy, None
        handle, self._handle = self._handle, None
        if conn is not None:
            with contextlib.suppress(Exception):
                sessions.untrack(conn.connection.dbapi_connection)
            with contextlib.suppress(Exception):
                conn.close()
            with contextlib.suppress(Exception):
                conn.engine.dispose()
        if handle is not None:
            with contextlib.suppress(Exception):
                Handle.close(handle)  # closed once already when shared


# The runs entered in each thread, innermost last: a run is never lent
# to another thread (a second run there has its own).
_local = threading.local()


def _entered() -> list[RunConnection]:
    if not hasattr(_local, "runs"):
        _local.runs = []
    return _local.runs


def active(url: str) -> RunConnection | None:
    """The run connection to ``url`` entered in this thread, if any
    (``postgresql://`` and the same URL naming its driver are one)."""
    runs = _entered()
    if not runs:
        return None
    for run in reversed(runs):
        if run.url == url or _same_url(run.url, url):
            return run
    return None


def _same_url(one: str, other: str) -> bool:
    """Whether two URLs are one once each names its installed driver."""
    try:
        return urls.parse(one).with_installed_driver() == \
            urls.parse(other).with_installed_driver()
    except urls.UrlError:
        return False


@contextlib.contextmanager
def sharing(url: str) -> Iterator[RunConnection]:
    """A run's block: in it, this thread borrows one connection to
    ``url`` (see :class:`RunConnection`), closed when the block ends.

    Other threads, and ``connect(url, private=True)`` (the run's lock),
    still get their own. Nested in a block for the same URL (a run in a
    run), the outer block's connection is used and left open.
    """
    outer = active(url)
    if outer is not None:
        yield outer
        return
    run = RunConnection(url)
    _entered().append(run)
    try:
        yield run
    finally:
        _entered().remove(run)
        run.discard()


def connect(url: str, *, private: bool = False) -> Handle:
    """Open ``url`` (or lend the :func:`sharing` block's connection,
    unless ``private``); raises BadUrl, DriverMissing or
    DatabaseUnreachable."""
    run = None if private else active(url)
    return run.handle() if run is not None else _open(url)


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
            _close_sqlalchemy(conn)


def parse(url: str) -> urls.Url:
    """``url`` read (see ``urls``); a URL that cannot be is BadUrl."""
    try:
        return urls.parse(url)
    except urls.UrlError as exc:
        raise exceptions.BadUrl(exc.url, exc.reason) from None


def _open(url: str) -> Handle:
    parsed = parse(url)
    direct = parsed.direct()
    if direct is not None and parsed.backend == "sqlite":
        return _sqlite(parsed, url)
    if direct is not None:
        handle = _open_server(parsed, url)
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


def open_server(url: str) -> Handle | None:
    """psycopg2 or PyMySQL directly; None when SQLAlchemy must open
    ``url`` (another driver, options only it translates, the driver
    missing)."""
    run = active(url)
    if run is not None:
        return run.handle()
    parsed = parse(url)
    if parsed.backend == "sqlite" or parsed.direct() is None:
        return None
    return _open_server(parsed, url)


def _open_server(parsed: urls.Url, url: str) -> Handle | None:
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
                   functools.partial(_open, url))
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
    sessions.track(conn, url, dialect, functools.partial(_open, url))
    return Handle(conn, dialect, qmark=engine.dialect.paramstyle == "qmark",
                  engine=engine)


def _close_sqlalchemy(conn: Any) -> None:
    try:
        conn.close()
    finally:
        conn.engine.dispose()


def _same_driver(handle: Handle, url: str) -> bool:
    """Whether SQLAlchemy would load, for ``url``, the driver that opened
    ``handle`` itself (not through SQLAlchemy)."""
    if handle.engine is not None:
        return False
    try:
        parsed = parse(url).with_installed_driver().to_sqlalchemy()
        driver = parsed.get_dialect().driver
    except Exception:  # a URL it refuses: opening it reports why
        return False
    return driver == type(handle.conn).__module__.partition(".")[0]
