"""The TaskFlow logbook: where runs are recorded so a crashed run resumes.

One logbook per target database, keyed by the database's identity
(``mistral_db_flows.identity``: asked of the server, never user or
password; runs recorded by earlier builds under the identity they read
from the URL's spelling are found too). By default
the logbook is a SQLite file in the state directory, written by our
light backend (``logbook.sqlite_backend``); with ``logbook_connection``
it is TaskFlow's SQL backend (``logbook.sql_backend``) in any database
TaskFlow supports, for shared use, but never the target database itself
(TaskFlow's own ``alembic_version`` would collide with Mistral's, and a
restore would roll the logbook back). ``logbook.records`` is what a run
records and the local file's format, read there without TaskFlow.

Here: where the logbook lives and the runs of one database in it
(``RunStore``, ``opened``). Importing the package imports no TaskFlow:
``status`` needs only the functions that say where the logbook lives.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any, Iterator

from mistral_db_flows import identity
from mistral_db_flows import states
from mistral_db_flows.logbook import records

_NAMESPACE = uuid.UUID("5c0f3f4e-7a57-4f6e-9a61-6d6973747261")
LOGBOOK_FILE = "logbook.sqlite"


def default_logbook_url(state_dir: str) -> str:
    """The default logbook: a file path (no scheme), see is_local_file."""
    return os.path.join(os.path.abspath(state_dir), LOGBOOK_FILE)


def is_local_file(logbook_url: str) -> bool:
    """A plain path means our SQLite logbook; a URL, TaskFlow's SQL one."""
    return "://" not in logbook_url


def book_uuid(identity: str) -> str:
    """The book of the database whose identity is ``identity``."""
    return str(uuid.uuid5(_NAMESPACE, identity))


def book_uuids(identity: str, legacy: str | None = None) -> list[str]:
    """The database's book, then the one an earlier build kept its runs
    in (named by the ``legacy`` identity), if that is another."""
    uuids = [book_uuid(identity)]
    if legacy is not None and book_uuid(legacy) not in uuids:
        uuids.append(book_uuid(legacy))
    return uuids


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


def _backend(logbook_url: str) -> Any:
    """The TaskFlow persistence backend the logbook URL names."""
    if is_local_file(logbook_url):
        from mistral_db_flows.logbook import sqlite_backend

        return sqlite_backend.SqliteLogbookBackend(
            {"filename": logbook_url})
    from mistral_db_flows.logbook import sql_backend

    return sql_backend.SqlLogbookBackend(logbook_url)


def backend_for(logbook_url: str) -> Any:
    """The TaskFlow persistence backend of a logbook URL (a fleet's job
    books live in the shared logbook beside the runs)."""
    return _backend(logbook_url)


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
        """Open the logbook (created when missing) and this database's
        book in it."""
        from taskflow import exceptions as tf_exc
        from taskflow.persistence import models

        self._backend = _backend(self.logbook_url)
        try:
            conn = self._backend.get_connection()
            conn.upgrade()
            uuid_ = book_uuid(self.identity)
            try:
                # Lazy: a book keeps every run of the database; only the
                # interrupted one is ever read whole (see interrupted()).
                self._book = conn.get_logbook(uuid_, lazy=True)
            except tf_exc.NotFound:
                self._book = models.LogBook(self.identity, uuid=uuid_)
                conn.save_logbook(self._book)
            legacy = book_uuids(self.identity, self.legacy)[1:]
            if legacy:
                try:
                    self._legacy_book = conn.get_logbook(legacy[0],
                                                         lazy=True)
                except tf_exc.NotFound:  # no run before this build
                    self._legacy_book = None
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def runs(self, *, lazy: bool = False) -> list[Any]:
        """Every recorded run of the database (``lazy``: without steps)."""
        conn = self._backend.get_connection()
        books = [self._book] + [b for b in [self._legacy_book]
                                if b is not None]
        return [fd for book in books
                for fd in conn.get_flows_for_book(book.uuid, lazy=lazy)]

    def interrupted(self) -> Any:
        """The newest run that did not end (with its steps), or None."""
        newest = records.newest_resumable(
            (fd.meta, fd) for fd in self.runs(lazy=True))
        if newest is None:
            return None
        return self._backend.get_connection().get_flow_details(newest.uuid)

    def prune(self, keep: int) -> list[str]:
        """Forget all but the newest ``keep`` ended runs of this
        database's book; a run that can still be resumed is never
        forgotten. Returns the uuids deleted."""
        ended = sorted(((fd.meta or {}).get(records.STARTED, 0), fd.uuid)
                       for fd in self._backend.get_connection()
                       .get_flows_for_book(self._book.uuid, lazy=True)
                       if not records.resumable(fd.meta))
        doomed = [uuid_ for _, uuid_ in ended[:max(0, len(ended) - keep)]]
        if doomed:
            self._backend.get_connection().destroy_flow_details(
                self._book, doomed)
        return doomed

    def start(self, operation: str, fingerprint: dict,
              **facts: Any) -> Any:
        """Record a new run; ``facts`` (JSON-ready) go into its meta."""
        import time

        from taskflow.persistence import models

        fd = models.FlowDetail(operation, uuid=str(uuid.uuid4()))
        fd.meta = dict(facts)
        fd.meta.update({records.STATE: states.RunState.RUNNING.value,
                        "operation": operation, "fingerprint": fingerprint,
                        records.STARTED: time.time()})
        self._book.add(fd)
        self._backend.get_connection().add_flow_details(self._book, fd)
        return fd

    def set_state(self, fd: Any, state: states.RunState,
                  **facts: Any) -> None:
        """Record the run's new state (and facts, JSON-ready)."""
        meta = dict(fd.meta or {})
        meta[records.STATE] = state.value
        meta.update(facts)
        fd.meta = meta
        self._backend.get_connection().update_flow_details(fd)


@contextlib.contextmanager
def opened(logbook_url: str, target_url: str, *,
           target_identity: str | None = None) -> Iterator[RunStore]:
    """The target database's runs in the logbook, for the body;
    ``target_identity`` is its identity when known (else the server is
    asked)."""
    if target_identity is None:
        target_identity = identity.of_url(target_url)
    check_separate(logbook_url, target_identity)
    store = RunStore(logbook_url, target_identity,
                     legacy=identity.legacy(target_url)).open()
    try:
        yield store
    finally:
        store.close()
