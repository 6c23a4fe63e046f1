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

from mistral_db_flows import backup_errors
from mistral_db_flows.backup import common

_PAGES_PER_STEP = 4096  # small steps let other connections in between


def check(u: Any, directory: str) -> int:
    """The bytes a backup will need (the file is copied whole)."""
    path = common.sqlite_path(u)
    try:
        return os.path.getsize(path)
    except OSError as exc:
        raise backup_errors.BackupError(
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
        raise backup_errors.RestoreError(
            "the backup %s is not a usable SQLite database: %s"
            % (path, exc), reason="unusable-backup",
            database=common.sqlite_path(u), path=path) from None


def _read_only(path: str) -> str:
    return "file:%s?mode=ro" % urllib.parse.quote(path)


def _copy(source: str, target: str, *, into_backup: bool) -> None:
    src = sqlite3.connect(source if into_backup else _read_only(source),
                          uri=not into_backup)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=_PAGES_PER_STEP)
            if into_backup:
                # A copy of a WAL database is a WAL database: reading it
                # would leave -wal/-shm files beside the backup.
                dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def dump(u: Any, fd: int, path: str) -> None:
    """Copy the database into the empty 0600 file ``path``."""
    source = common.sqlite_path(u)
    if not os.path.exists(source):
        raise backup_errors.BackupError(
            "the SQLite database %s does not exist" % source,
            reason="unreachable", database=source)
    try:
        _copy(source, path, into_backup=True)
    except sqlite3.Error as exc:
        raise backup_errors.BackupError(
            "SQLite backup of %s failed: %s" % (source, exc),
            reason="tool-failed", database=source) from None


def restore(u: Any, path: str, fd: int) -> None:
    """Copy the backup's pages over the database (SQLite reads the
    backup by name; ``fd`` is unused)."""
    target = common.sqlite_path(u)
    try:
        _copy(path, target, into_backup=False)
    except sqlite3.Error as exc:
        raise backup_errors.RestoreError(
            "SQLite restore of %s from %s failed: %s" % (target, path, exc),
            reason="tool-failed", database=target, path=path,
            changed=True) from None
