"""The TaskFlow logbook: where runs are recorded so a crashed run resumes.

One logbook per target database, keyed by the database's identity
(backend, host, port, database name; never user or password). By default
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


def check_separate(logbook_url: str, target_url: str) -> None:
    """Refuse a logbook inside the target database."""
    from mistral_db_flows import exceptions

    if is_local_file(logbook_url):
        logbook = "sqlite://%s" % os.path.realpath(logbook_url)
    else:
        logbook = identity.database_identity(logbook_url)
    if logbook == identity.database_identity(target_url):
        raise exceptions.ConfigError(
            "the logbook connection must not be the Mistral database "
            "itself (%s)" % identity.database_identity(target_url))


def _backend(logbook_url: str) -> Any:
    """The TaskFlow persistence backend the logbook URL names."""
    if is_local_file(logbook_url):
        from mistral_db_flows.logbook import sqlite_backend

        return sqlite_backend.SqliteLogbookBackend(
            {"filename": logbook_url})
    from mistral_db_flows.logbook import sql_backend

    return sql_backend.SqlLogbookBackend(logbook_url)


class RunStore:
    """Runs of one target database in a logbook."""

    def __init__(self, logbook_url: str, identity: str) -> None:
        self.logbook_url = logbook_url
        self.identity = identity
        self._backend: Any = None
        self._book: Any = None

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
        return list(self._backend.get_connection().get_flows_for_book(
            self._book.uuid, lazy=lazy))

    def interrupted(self) -> Any:
        """The newest run that did not end (with its steps), or None."""
        newest = records.newest_resumable(
            (fd.meta, fd) for fd in self.runs(lazy=True))
        if newest is None:
            return None
        return self._backend.get_connection().get_flow_details(newest.uuid)

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
def opened(logbook_url: str, target_url: str) -> Iterator[RunStore]:
    """The target database's runs in the logbook, for the body."""
    check_separate(logbook_url, target_url)
    store = RunStore(logbook_url,
                     identity.database_identity(target_url)).open()
    try:
        yield store
    finally:
        store.close()
