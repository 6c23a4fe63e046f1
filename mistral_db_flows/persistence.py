"""The TaskFlow logbook: where runs are recorded so a crashed run resumes.

One logbook per target database, keyed by the database's identity
(``mistral_db_flows.identity``: asked of the server, never user or
password; runs recorded by earlier builds under the identity they read
from the URL's spelling are found too). By default
the logbook lives in a SQLite file in the state directory, written by our
light backend (``mistral_db_flows.sqlite_logbook``); with
``logbook_connection`` it is TaskFlow's SQL backend in any database
TaskFlow supports, for shared use, but never the target
database itself (TaskFlow's own ``alembic_version`` would collide with
Mistral's, and a restore would roll the logbook back).
"""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any, Iterator

from mistral_db_flows import identity

# Values of flow_detail.meta["mdf_state"].
RUNNING = "running"      # in progress, or the process died
STOPPED = "stopped"      # failed with --on-failure stop: resumable
FINISHED = "finished"
REVERTED = "reverted"
FAILED = "failed"        # a read-only run failed: nothing to resume
ABANDONED = "abandoned"
RESUMABLE = frozenset({RUNNING, STOPPED})

_NAMESPACE = uuid.UUID("5c0f3f4e-7a57-4f6e-9a61-6d6973747261")
LOGBOOK_FILE = "logbook.sqlite"


def default_logbook_url(state_dir: str) -> str:
    """The default logbook: a file path (no scheme), see is_local_file."""
    return os.path.join(os.path.abspath(state_dir), LOGBOOK_FILE)


def is_local_file(logbook_url: str) -> bool:
    """A plain path means our SQLite logbook; a URL, TaskFlow's SQL one."""
    return "://" not in logbook_url


def book_uuid(identity: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, identity))


def book_uuids(identity: str, legacy: str | None = None) -> list[str]:
    """The database's book, then the one an earlier build kept its runs
    in (named by the ``legacy`` identity), if that is another."""
    uuids = [book_uuid(identity)]
    if legacy is not None and book_uuid(legacy) not in uuids:
        uuids.append(book_uuid(legacy))
    return uuids


def peek_interrupted(path: str, identity: str,
                     legacy: str | None = None) -> dict | None:
    """Read the local logbook's interrupted run without TaskFlow.

    ``status`` must stay fast; TaskFlow costs a third of a second to
    import. Returns the run's meta plus ``atoms`` (name -> state).
    """
    import sqlite3

    from mistral_db_flows import logbook_file as kv

    if not os.path.exists(path):
        return None
    conn = kv.open_file(path, readonly=True)
    try:
        found = []
        for fd_uuid in [fd for book in book_uuids(identity, legacy)
                        for fd in kv.children(conn, "/books/%s" % book)]:
            meta = kv.item(conn, "/flow_details/%s" % fd_uuid).get("meta")
            meta = meta or {}
            if meta.get("mdf_state") in RESUMABLE:
                found.append((meta.get("started", 0), fd_uuid, meta))
        if not found:
            return None
        _, fd_uuid, meta = max(found, key=lambda f: f[0])
        atoms = {}
        for ad_uuid in kv.children(conn, "/flow_details/%s" % fd_uuid):
            atom = kv.item(conn, "/atom_details/%s" % ad_uuid)["atom"]
            atoms[atom["name"]] = atom["state"]
        meta["atoms"] = atoms
        return meta
    except (sqlite3.Error, KeyError):
        return None  # no table or record yet: nothing was recorded
    finally:
        conn.close()


def check_separate(logbook_url: str, target_identity: str) -> None:
    """Refuse a logbook inside the target database."""
    from mistral_db_flows import exceptions

    if is_local_file(logbook_url):
        logbook = "sqlite://%s" % os.path.realpath(logbook_url)
    else:
        try:
            logbook = identity.of_url(logbook_url)
        except exceptions.DatabaseUnreachable:
            return  # opening it fails next, with TaskFlow's own error
    if logbook == target_identity:
        raise exceptions.ConfigError(
            "the logbook connection must not be the Mistral database "
            "itself (%s)" % target_identity)


def _backend_class():
    from taskflow.persistence.backends import impl_sqlalchemy

    class CachedConnectionBackend(impl_sqlalchemy.SQLAlchemyBackend):
        """Reuses one connection: the stock one rebuilds its tables on
        every state save, which dominates a many-step flow."""

        _cached = None

        def get_connection(self):
            if self._cached is None:
                conn = super().get_connection()
                conn.close = lambda: None
                self._cached = conn
            return self._cached

    return CachedConnectionBackend


def _engine(logbook_url: str) -> Any:
    """The logbook's engine; for SQLite one connection in WAL mode.

    TaskFlow saves state after every step change: with a new connection
    and a full fsync per save that costs more than the migrations. WAL
    with synchronous=NORMAL survives a killed process; after a power cut
    the last save may be lost, which only re-runs an idempotent step.
    """
    import sqlalchemy as sa

    from mistral_db_flows import dbapi

    parsed = dbapi.parse(logbook_url)
    if parsed.backend != "sqlite":
        return sa.create_engine(parsed.to_sqlalchemy(), pool_pre_ping=True)
    engine = sa.create_engine(
        parsed.to_sqlalchemy(), poolclass=sa.pool.StaticPool,
        connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


class RunStore:
    """Runs of one target database in a logbook."""

    def __init__(self, logbook_url: str, identity: str,
                 legacy: str | None = None) -> None:
        self.logbook_url = logbook_url
        self.identity = identity
        # Runs an earlier build recorded under the identity it read
        # from the URL: still found, still resumable.
        self.legacy = legacy
        self._backend: Any = None
        self._book: Any = None
        self._legacy_book: Any = None

    @property
    def backend(self) -> Any:
        """The TaskFlow persistence backend, for engines.load()."""
        return self._backend

    def open(self) -> "RunStore":
        from taskflow.persistence import models

        if is_local_file(self.logbook_url):
            from mistral_db_flows import sqlite_logbook

            self._backend = sqlite_logbook.SqliteLogbookBackend(
                {"filename": self.logbook_url})
        else:
            self._backend = _backend_class()(
                {"connection": self.logbook_url},
                engine=_engine(self.logbook_url))
        conn = self._backend.get_connection()
        conn.upgrade()
        uuid_ = book_uuid(self.identity)
        try:
            # Lazy: a book keeps every run of the database; only the
            # interrupted one is ever read whole (see interrupted()).
            self._book = conn.get_logbook(uuid_, lazy=True)
        except Exception:  # taskflow raises NotFound
            self._book = models.LogBook(self.identity, uuid=uuid_)
            conn.save_logbook(self._book)
        legacy = book_uuids(self.identity, self.legacy)[1:]
        if legacy:
            try:
                self._legacy_book = conn.get_logbook(legacy[0], lazy=True)
            except Exception:  # NotFound: no run before this build
                self._legacy_book = None
        return self

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            engine = getattr(self._backend, "engine", None)
            if engine is not None:
                engine.dispose()
            self._backend = None

    def _save(self) -> None:
        self._backend.get_connection().save_logbook(self._book)

    def runs(self, *, lazy: bool = False) -> list[Any]:
        """Every recorded run of the database (``lazy``: without steps)."""
        conn = self._backend.get_connection()
        books = [self._book] + [b for b in [self._legacy_book]
                                if b is not None]
        return [fd for book in books
                for fd in conn.get_flows_for_book(book.uuid, lazy=lazy)]

    def interrupted(self) -> Any:
        """The newest run that did not end (with its steps), or None."""
        found = [fd for fd in self.runs(lazy=True)
                 if (fd.meta or {}).get("mdf_state") in RESUMABLE]
        if not found:
            return None
        newest = max(found, key=lambda fd: (fd.meta or {}).get("started", 0))
        return self._backend.get_connection().get_flow_details(newest.uuid)

    def start(self, operation: str, fingerprint: dict,
              **facts: Any) -> Any:
        """Record a new run; ``facts`` (JSON-ready) go into its meta."""
        import time

        from taskflow.persistence import models

        fd = models.FlowDetail(operation, uuid=str(uuid.uuid4()))
        fd.meta = dict(facts, mdf_state=RUNNING, operation=operation,
                       fingerprint=fingerprint, started=time.time())
        self._book.add(fd)
        conn = self._backend.get_connection()
        if hasattr(conn, "add_flow_details"):
            conn.add_flow_details(self._book, fd)
        else:
            self._save()
        return fd

    def set_state(self, fd: Any, state: str, **facts: Any) -> None:
        meta = dict(fd.meta or {})
        meta["mdf_state"] = state
        meta.update(facts)
        fd.meta = meta
        self._backend.get_connection().update_flow_details(fd)


@contextlib.contextmanager
def opened(logbook_url: str, target_url: str, *,
           target_identity: str | None = None) -> Iterator[RunStore]:
    """The runs of the database at ``target_url``; ``target_identity``
    is its identity when known (else the server is asked)."""
    if target_identity is None:
        target_identity = identity.of_url(target_url)
    check_separate(logbook_url, target_identity)
    store = RunStore(logbook_url, target_identity,
                     legacy=identity.legacy(target_url)).open()
    try:
        yield store
    finally:
        store.close()
