"""Runs that did not end: read them, finish their revert, abandon them.

A run killed, stopped or cut off leaves its record in the logbook (and,
while it reverted, its steps' journals in the database). ``status``
reads it without waiting (:func:`read`); any command that changes the
database first finishes a revert it finds cut off
(:func:`finish_revert`) or a dump's restore that failed half-way
(:func:`retry_restore`); ``abandon`` forgets it (:func:`abandon`).
"""
from __future__ import annotations

import logging
from typing import Any

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import guarding
from mistral_db_flows import identity
from mistral_db_flows import logbook
from mistral_db_flows import results
from mistral_db_flows import resume
from mistral_db_flows import run_cleanup
from mistral_db_flows import states
from mistral_db_flows import version_table
from mistral_db_flows.logbook import records

LOG = logging.getLogger(__name__)


def retry_restore(settings: conf.Settings, store: Any, fd: Any,
                   operation: str) -> None:
    """Restore the backup an interrupted run failed to restore; raise
    StepFailed (state ``reverted``) saying so, or RestoreError again."""
    from mistral_db_flows import backup

    meta = fd.meta or {}
    taken = meta.get("backup") or {}
    step = resume.describe(fd)["step"] or "backup"
    backup.restore(settings.database_url, taken,
                   lock_wait=settings.lock_timeout)
    store.set_state(fd, states.RunState.REVERTED)
    after = version_table.read_version(settings.database_url)
    plan = meta.get("plan") or {}
    run = results.Run(operation=operation, state=states.RunState.REVERTED,
                      start_revision=plan.get("start"),
                      end_revision=after[0] if after else None,
                      backup=taken.get("path"), target=plan.get("target"),
                      resumed=True)
    raise exceptions.StepFailed(
        step, "the earlier run failed and so did its restore", run=run,
        aftermath="the backup %s was restored now, so the database is as "
        "before that run; run the command again to upgrade"
        % taken.get("path"))


def finish_revert(settings: conf.Settings, store: Any, fd: Any,
                   operation: str, plan: flows.Plan,
                   relative: str | None) -> bool:
    """Finish the revert an interrupted run did not (killed, connection
    lost, or its revert failed); True if that run is now settled.

    Its steps' journals are still in the database: replaying them,
    newest step first, is what its reverts would have done. Any command
    that changes the database does this first, and says so; the same
    command as the killed run's instead resumes its engine, which ends
    the revert (and a dump's restore) as it would have.
    """
    from mistral_db_flows import dbapi
    from mistral_db_flows import revert

    meta = fd.meta or {}
    if not meta.get("step_revert_failed"):
        if not resume.reverting(fd):
            return False
        try:
            resume.resume_plan(fd, operation, plan, relative=relative)
            return False  # the same run: TaskFlow resumes its revert
        except exceptions.ResumeRefused:
            pass
    with dbapi.sqlalchemy_connection(settings.database_url) as conn:
        done = revert.finish(conn)
    if meta.get("operation") in ("populate", "populate_actions"):
        from mistral_db_flows import populate

        # Its undo journal is in the database, keyed by the run.
        if populate.undo_run(settings.database_url, fd.uuid):
            done = done + [str(meta["operation"])]
    after = version_table.read_version(settings.database_url)
    start = (meta.get("plan") or {}).get("start")
    took_dump = any(ad.name == "backup" and isinstance(ad.results, dict)
                    and ad.results.get("path") for ad in fd)
    if not done and (took_dump or (after[0] if after else None) != start):
        return False  # the dump's restore was cut off: its own machinery
    store.set_state(fd, states.RunState.REVERTED)
    LOG.warning(
        "finished reverting the interrupted %s run (%s): the database is "
        "back at %s", meta.get("operation"),
        "steps %s undone" % ", ".join(done) if done else "nothing left "
        "to undo", (after[0] if after else "base"))
    return True



def read(settings: conf.Settings) -> dict | None:
    """The run of this database that has not ended, without waiting.

    Fast for the default SQLite logbook (read directly, no TaskFlow).
    A run recorded as running is either still going (another process
    holds the lock: ``in_progress`` is True and ``holder`` tells who)
    or was interrupted (nobody holds the lock).
    """
    url = guarding.logbook_url(settings)
    target = identity.of_url(settings.database_url)
    if logbook.is_local_file(url):
        meta = records.peek_interrupted(url, *logbook.book_uuids(
            target, identity.legacy(settings.database_url)))
        info = (resume.describe_meta(meta, meta.pop("atoms"),
                                     meta.pop("results", None))
                if meta else None)
    else:
        with logbook.opened(url, settings.database_url,
                            target_identity=target) as store:
            fd = store.interrupted()
            info = resume.describe(fd) if fd is not None else None
    if info is None:
        return None
    info["in_progress"] = False
    if info["state"] is states.RunState.RUNNING:
        from mistral_db_flows import locking

        holder = locking.held_by(settings.database_url, identity=target)
        if holder is not None:
            info["in_progress"] = True
            info["holder"] = holder
    return info


def abandon(settings: conf.Settings) -> dict | None:
    """Forget the interrupted run (the database is left as it is)."""
    with guarding.guarded(settings, owner="abandon") as store:
        fd = store.interrupted()
        if fd is None:
            return None
        info = resume.describe(fd)
        store.set_state(fd, states.RunState.ABANDONED)
        run_cleanup.drop_revert_journal(settings)
        return info
