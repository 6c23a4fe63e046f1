"""One run's connection to its database, lent to each of its steps.

A run enters :func:`sharing` once; in it, its steps borrow one
connection (:class:`RunConnection`) instead of opening their own
(:func:`dbapi.connect`, :func:`dbapi.sqlalchemy_connection` ask
:func:`active` first).
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Iterator

from mistral_db_flows import dbhandle
from mistral_db_flows import fencing
from mistral_db_flows import migration
from mistral_db_flows import sessions
from mistral_db_flows import urls


class _LentHandle(dbhandle.Handle):
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
    :class:`dbhandle.Handle` (:func:`dbapi.connect`) and one SQLAlchemy
    Connection (:func:`dbapi.sqlalchemy_connection`), the latter built
    on the handle's driver connection for PostgreSQL and MySQL. SQLite gets a second
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

    def handle(self) -> dbhandle.Handle:
        """The driver handle (opened on first use)."""
        if self._handle is None:
            opened = dbhandle.open_new(self.url)
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
        parsed = dbhandle.parse(self.url)
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
                               functools.partial(dbhandle.open_new, self.url))
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
                dbhandle.Handle.close(handle)  # closed once already when shared


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


def _same_driver(handle: dbhandle.Handle, url: str) -> bool:
    """Whether SQLAlchemy would load, for ``url``, the driver that opened
    ``handle`` itself (not through SQLAlchemy)."""
    if handle.engine is not None:
        return False
    try:
        parsed = dbhandle.parse(url).with_installed_driver().to_sqlalchemy()
        driver = parsed.get_dialect().driver
    except Exception:  # a URL it refuses: opening it reports why
        return False
    return driver == type(handle.conn).__module__.partition(".")[0]
