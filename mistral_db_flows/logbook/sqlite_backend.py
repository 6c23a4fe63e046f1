"""The default logbook: TaskFlow's path-based persistence on sqlite3.

TaskFlow's SQL backend costs a guarded run about 0.15 s before its first
step: it imports SQLAlchemy's SQLite dialect and Alembic, and checks its
own schema with Alembic on every open. TaskFlow's directory backend is
cheap but rewrites files in place, so a kill in the middle of a save
leaves a truncated record and the run can't be resumed. This backend
keeps TaskFlow's path-based model (books, flow details and atom details
addressed by path; TaskFlow does the serializing and merging) in one
SQLite table (the format is ``logbook.records``, which ``status`` reads
without TaskFlow): every save is a transaction, so a kill leaves either
the old or the new record.

Durability: WAL with ``synchronous=NORMAL``. A killed process loses
nothing; a power cut may lose the last save, which only re-runs an
idempotent step.
"""
from __future__ import annotations

import contextlib
import json
import os
import posixpath
import sqlite3
import threading
from typing import Any, Iterator

from taskflow import exceptions as tf_exc
from taskflow.persistence import path_based

from mistral_db_flows import exceptions
from mistral_db_flows.logbook import records


@contextlib.contextmanager
def _named(filename: str) -> Iterator[None]:
    """The system's and SQLite's errors as LogbookError naming the file
    (a full disk, a damaged file), not as an anonymous driver error."""
    try:
        yield
    except sqlite3.Error as exc:
        raise exceptions.LogbookError(filename, str(exc)) from exc
    except OSError as exc:
        raise exceptions.LogbookError(
            filename, exc.strerror or str(exc)) from exc


class SqliteLogbookBackend(path_based.PathBasedBackend):
    """``conf``: ``{"filename": <path of the SQLite file>}``."""

    DEFAULT_PATH = "/"

    def __init__(self, conf: dict) -> None:
        super().__init__(conf)
        self.filename = os.path.abspath(conf["filename"])
        self.lock = threading.RLock()
        with _named(self.filename):
            self.db = records.open_file(self.filename)
        self._closed = False
        self._connection: SqliteLogbookConnection | None = None

    def get_connection(self) -> "SqliteLogbookConnection":
        if self._connection is None:
            self._connection = SqliteLogbookConnection(self)
        return self._connection

    def close(self) -> None:
        if not self._closed:
            self.db.close()
            self._closed = True


class SqliteLogbookConnection(path_based.PathBasedConnection):
    """Records at the paths ``records`` reads them from."""

    def __init__(self, backend: SqliteLogbookBackend) -> None:
        super().__init__(backend)
        self._db = backend.db
        self._filename = backend.filename

    # TaskFlow derives these from its own names; ours are fixed so that
    # the TaskFlow-free reader (records.peek_interrupted) finds them.
    @property
    def book_path(self) -> str:
        return records.BOOKS

    @property
    def flow_path(self) -> str:
        return records.FLOW_DETAILS

    @property
    def atom_path(self) -> str:
        return records.ATOM_DETAILS

    def _join_path(self, *parts: str) -> str:
        return posixpath.join(*parts)

    def _get_item(self, path: str) -> Any:
        with self.backend.lock, _named(self._filename):
            try:
                return records.item(self._db, path)
            except KeyError:
                raise tf_exc.NotFound("no item at %s" % path) from None

    def _set_item(self, path: str, value: Any, transaction: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO %s (path, parent, value) VALUES "
            "(?, ?, ?)" % records.TABLE,
            (path, posixpath.dirname(path), json.dumps(value)))

    def _del_tree(self, path: str, transaction: Any) -> None:
        self._db.execute(
            "DELETE FROM %s WHERE path = ? OR substr(path, 1, ?) = ?"
            % records.TABLE, (path, len(path) + 1, path + "/"))

    def _get_children(self, path: str) -> list[str]:
        with self.backend.lock, _named(self._filename):
            return records.children(self._db, path)

    def _ensure_path(self, path: str) -> None:
        with self.backend.lock, _named(self._filename):
            for statement in records.SCHEMA:
                self._db.execute(statement)

    def _create_link(self, src_path: str, dest_path: str,
                     transaction: Any) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO %s (path, parent, value) VALUES "
            "(?, ?, NULL)" % records.TABLE,
            (dest_path, posixpath.dirname(dest_path)))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.backend.lock, _named(self._filename):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield None
                self._db.execute("COMMIT")
            except BaseException:
                # A COMMIT that failed (a full disk) leaves the
                # transaction open: end it, so the next save says why.
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise

    def add_flow_details(self, book: Any, flow_detail: Any) -> None:
        """Record one new run in ``book`` without rewriting the others
        (``save_logbook`` rewrites every run the book holds)."""
        book_path = self._get_obj_path(book)
        with self._transaction() as transaction:
            self._update_object(book, transaction, ignore_missing=True)
            self._do_update_flow_details(flow_detail, transaction,
                                         ignore_missing=True)
            self._create_link(self._get_obj_path(flow_detail),
                              self._join_path(book_path, flow_detail.uuid),
                              transaction)

    def destroy_flow_details(self, book: Any, uuids: list[str]) -> None:
        """Delete these runs of ``book``, their steps and their links,
        in one transaction."""
        book_path = self._get_obj_path(book)
        with self._transaction() as transaction:
            for uuid_ in uuids:
                flow_path = self._join_path(self.flow_path, uuid_)
                for atom in records.children(self._db, flow_path):
                    self._del_tree(self._join_path(self.atom_path, atom),
                                   transaction)
                self._del_tree(flow_path, transaction)
                self._del_tree(self._join_path(book_path, uuid_),
                               transaction)

    def validate(self) -> None:
        with self.backend.lock, _named(self._filename):
            self._db.execute("SELECT 1")

    def close(self) -> None:
        pass
