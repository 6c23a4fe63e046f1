"""SQLite: the online backup API, both ways.

The backup API copies every page under SQLite's own locking, so the copy
is consistent even while others read. Restoring copies the pages back:
the database is then page-for-page the backup, except the header's
change counters, which SQLite bumps so that open connections notice.
"""
from __future__ import annotations

import os
import sqlite3
import urllib.parse
from typing import Any

from mistral_db_flows import exceptions
from mistral_db_flows.backup import common

_PAGES_PER_STEP = 4096  # small steps let other connections in between
_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, named there from Python 3.11 on


def check(u: Any, directory: str) -> int:
    """The bytes a backup will need (the file is copied whole)."""
    path = common.sqlite_path(u)
    try:
        return os.path.getsize(path)
    except OSError as exc:
        raise exceptions.BackupError(
            "cannot read the SQLite database %s: %s"
            % (path, exc.strerror), reason="unreachable",
            database=path) from None


def check_restore(u: Any, path: str) -> None:
    """Refuse a backup file SQLite cannot open, before touching
    anything."""
    try:
        conn = sqlite3.connect(_read_only(path), uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise exceptions.RestoreError(
            "the backup %s is not a usable SQLite database: %s"
            % (path, exc), reason="unusable-backup",
            database=common.sqlite_path(u), path=path) from None


def _read_only(path: str) -> str:
    return "file:%s?mode=ro" % urllib.parse.quote(path)


class _GaveUp(Exception):
    """The copy waited for another connection's lock too long."""


def _copy(source: str, target: str, *, into_backup: bool,
          lock_wait: float | None = None) -> None:
    src = sqlite3.connect(source if into_backup else _read_only(source),
                          uri=not into_backup)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=_PAGES_PER_STEP,
                       progress=_deadline(lock_wait))
            if into_backup:
                # A copy of a WAL database is a WAL database: reading it
                # would leave -wal/-shm files beside the backup.
                dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _deadline(lock_wait: float | None):
    """A backup() progress callback that gives up on a busy database
    after ``lock_wait`` seconds (Python's backup() retries forever)."""
    if lock_wait is None:
        return None
    import time

    deadline = time.monotonic() + max(0.0, lock_wait)

    def step(status: int, remaining: int, total: int) -> None:
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) \
                and time.monotonic() > deadline:
            raise _GaveUp()

    return step


def dump(u: Any, fd: int, path: str) -> None:
    """Copy the database into the empty 0600 file ``path``."""
    source = common.sqlite_path(u)
    if not os.path.exists(source):
        raise exceptions.BackupError(
            "the SQLite database %s does not exist" % source,
            reason="unreachable", database=source)
    try:
        _copy(source, path, into_backup=True)
    except sqlite3.Error as exc:
        folder = os.path.dirname(path)
        full = getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL
        raise exceptions.BackupError(
            "SQLite backup of %s into %s failed: %s" % (source, folder, exc),
            reason="no-space" if full else "tool-failed", database=source,
            path=folder) from None


def restore(u: Any, path: str, fd: int, *,
            lock_wait: float | None = None) -> None:
    """Copy the backup's pages over the database (SQLite reads the
    backup by name; ``fd`` is unused). With ``lock_wait``, a database
    another connection keeps busy for longer fails the restore before
    any page was written (the copy takes the write lock at its first
    step and keeps it to the end)."""
    target = common.sqlite_path(u)
    try:
        _copy(path, target, into_backup=False, lock_wait=lock_wait)
    except _GaveUp:
        raise common.lock_timeout_error(
            target, path, lock_wait or 0.0, table=None, changed=False,
            outcome="the database is unchanged") from None
    except sqlite3.Error as exc:
        raise exceptions.RestoreError(
            "SQLite restore of %s from %s failed: %s" % (target, path, exc),
            reason="tool-failed", database=target, path=path,
            changed=True) from None
