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
from mistral_db_flows import flows
from mistral_db_flows import urls

LOG = logging.getLogger(__name__)


class Backup(task.Task):
    """Provides ``backup``: the backup taken (None: none taken)."""

    # Progress comes from the backup's own thread: see STEP_PROGRESS.
    TASK_EVENTS = task.Task.TASK_EVENTS + (flows.STEP_PROGRESS,)

    def __init__(self, database_url: str, *, directory: str, label: str,
                 enabled: bool = True, quiet: bool = False,
                 restore_on_failure: bool = True,
                 progress=None,
                 lock_wait: float = backup.common.DEFAULT_LOCK_WAIT,
                 identity: str | None = None) -> None:
        super().__init__(name="backup", provides="backup")
        self._database_url = database_url
        # The database's identity (names the backup file), when the run
        # knows it already; else the backup asks the server.
        self._identity = identity
        self._directory = directory
        self._label = label
        self._enabled = enabled
        # No warning when no dump is needed (self-reverting steps).
        self._quiet = quiet
        self._restore_on_failure = restore_on_failure
        self._progress = progress
        # How long a restore may wait for other sessions' locks.
        self._lock_wait = lock_wait
        self._early: _EarlyBackup | None = None

    def start_early(self) -> None:
        """Start taking the backup now, in a thread, for ``execute`` to
        collect: the dump (a separate process for the servers) runs
        while the rest of the flow is built and the engine loaded, which
        takes as long as dumping a small database. Only for a new run
        that will execute this task next; without ``execute`` the backup
        stays in the directory and is pruned like the others."""
        if self._enabled and self._early is None \
                and not urls.missing_sqlite_file(self._database_url):
            self._early = _EarlyBackup(
                lambda progress: backup.take(
                    self._database_url, self._directory, label=self._label,
                    progress=progress, identity=self._identity))

    def execute(self, prior_backup: dict | None = None) -> dict | None:
        if not self._enabled:
            if self._quiet:
                return None
            LOG.warning("no backup taken (disabled): a failure will stop "
                        "and leave the database as it is")
            return None
        if prior_backup:
            return prior_backup
        if self._early is not None:
            early, self._early = self._early, None
            return early.result(self._report)
        missing = urls.missing_sqlite_file(self._database_url)
        if missing:
            # Nothing to copy: "before" is "no database file at all".
            return {"backend": "sqlite", "path": None, "absent": missing}
        return backup.take(self._database_url, self._directory,
                           label=self._label, progress=self._report,
                           identity=self._identity)

    def _report(self, done: int, total: int | None) -> None:
        """The backup module's progress (from its own thread)."""
        if self._progress is not None:
            self._progress(done, total)
        self.notifier.notify(flows.STEP_PROGRESS, {
            "progress": min(1.0, done / total) if total else 0.0,
            "done": done, "total": total})

    def revert(self, result, *args, **kwargs) -> dict | None:
        """What was undone (None: nothing, e.g. with on_failure=stop)."""
        if not self._restore_on_failure or not isinstance(result, dict):
            return None
        if result.get("absent"):
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    os.unlink(result["absent"] + suffix)
                except FileNotFoundError:
                    pass
            return {"removed": result["absent"]}
        backup.restore(self._database_url, result, progress=self._report,
                       lock_wait=self._lock_wait)
        return {"restored": result.get("path")}


class _EarlyBackup:
    """A backup taken in a thread; ``result`` waits for it, passing its
    progress on from the calling thread."""

    def __init__(self, take) -> None:
        import threading

        self._latest: tuple[int, int | None] | None = None
        self._outcome: dict = {}

        def run() -> None:
            try:
                self._outcome["value"] = take(self._note)
            except BaseException as exc:  # handed to result()
                self._outcome["error"] = exc

        self._thread = threading.Thread(target=run, name="early-backup",
                                        daemon=True)
        self._thread.start()

    def _note(self, done: int, total: int | None) -> None:
        self._latest = (done, total)

    def result(self, progress) -> dict:
        while True:
            self._thread.join(0.5)
            latest, self._latest = self._latest, None
            if latest is not None:
                progress(*latest)
            if not self._thread.is_alive():
                break
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["value"]


# Operations whose steps each undo exactly their own change (populate's
# journal, stamp's previous revision): a dump would only cost time.
SELF_REVERTING = ("populate", "populate_actions", "stamp")


def dumps_for(operation: str, enabled: bool) -> bool:
    """Whether a run of ``operation`` takes a dump (``enabled``: the
    configuration asks for backups)."""
    return enabled and operation not in SELF_REVERTING


def factory(ctx) -> list[task.Task]:
    from mistral_db_flows import conf

    settings = ctx.settings or conf.Settings(database_url=ctx.database_url)
    made = Backup(
        ctx.database_url,
        directory=settings.resolved_backup_dir(),
        label=ctx.operation,
        enabled=dumps_for(ctx.operation, settings.backup),
        quiet=ctx.operation in SELF_REVERTING,
        restore_on_failure=settings.restores_on_failure,
        lock_wait=settings.lock_timeout,
        identity=getattr(ctx, "identity", None))
    if getattr(ctx, "fresh_run", False):
        made.start_early()
    return [made]
