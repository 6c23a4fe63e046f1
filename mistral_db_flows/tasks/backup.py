"""backup: the first task of every flow that changes the database.

``execute`` takes a consistent snapshot and provides ``backup`` (its
description: backend, path, size; never a URL). ``revert`` restores it,
so a failure in any later step leaves the database exactly as before —
unless the operator chose ``on_failure = stop`` or no backup, in which
case the database is left as it is for inspection and a resume.

A run resumed after ``on_failure = stop`` hands in the backup its first
attempt took as ``prior_backup``: the state to return to is the one
before the first attempt, not the half-migrated one.
"""
from __future__ import annotations

import logging
import os

from taskflow import task

from mistral_db_flows import backup
from mistral_db_flows import backup_errors

LOG = logging.getLogger(__name__)


class Backup(task.Task):
    """Provides ``backup``: the backup taken (None: none taken)."""

    def __init__(self, database_url: str, *, directory: str, label: str,
                 enabled: bool = True, restore_on_failure: bool = True,
                 progress=None) -> None:
        super().__init__(name="backup", provides="backup")
        self._database_url = database_url
        self._directory = directory
        self._label = label
        self._enabled = enabled
        self._restore_on_failure = restore_on_failure
        self._progress = progress

    def execute(self, prior_backup: dict | None = None) -> dict | None:
        if not self._enabled:
            LOG.warning("no backup taken (disabled): a failure will stop "
                        "and leave the database as it is")
            return None
        if prior_backup:
            return prior_backup
        missing = missing_sqlite_file(self._database_url)
        if missing:
            # Nothing to copy: "before" is "no database file at all".
            return {"backend": "sqlite", "path": None, "absent": missing}
        return backup.take(self._database_url, self._directory,
                           label=self._label, progress=self._progress)

    def revert(self, result, *args, **kwargs) -> None:
        if not self._restore_on_failure or not isinstance(result, dict):
            return None
        if result.get("absent"):
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    os.unlink(result["absent"] + suffix)
                except FileNotFoundError:
                    pass
            return None
        backup.restore(self._database_url, result, progress=self._progress)
        return None


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database file that does not exist yet.

    None for other databases, for in-memory or URI SQLite databases (no
    file of theirs to name) and for URLs that do not parse (the backup
    itself then says why).
    """
    from mistral_db_flows import migration
    from mistral_db_flows.backup import common

    parts = migration.parse_url(url)
    if parts is not None and parts["dialect"] != "sqlite":
        return None
    if parts is None and not url.lower().startswith("sqlite"):
        return None
    try:
        # The path as the backup reads it (SQLAlchemy for odd URLs).
        u = common.parse(url)
    except backup_errors.BackupError:
        return None
    if u.get_backend_name() != "sqlite":
        return None
    path = u.database or ""
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    return None if os.path.exists(path) else os.path.abspath(path)


def factory(ctx) -> list[task.Task]:
    from mistral_db_flows import conf

    settings = ctx.settings or conf.Settings(database_url=ctx.database_url)
    return [Backup(
        ctx.database_url,
        directory=settings.resolved_backup_dir(),
        label=ctx.operation,
        enabled=settings.backup,
        restore_on_failure=settings.restores_on_failure)]
