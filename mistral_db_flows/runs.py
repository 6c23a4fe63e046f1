"""Guarded runs: one at a time, recorded in a logbook, resumable.

A run that changes the database holds the database's lock for its whole
length and records every step in the TaskFlow logbook. Running the same
command again after a crash finds the interrupted run and continues it
from the step that was running, with the plan it started with; a run
that cannot safely continue (another operation or target, a changed
flow, a database that moved) is refused with a way out.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import identity
from mistral_db_flows import logbook
from mistral_db_flows import states
from mistral_db_flows.logbook import records


def logbook_url(settings: conf.Settings) -> str:
    return settings.logbook_connection or logbook.default_logbook_url(
        settings.resolved_state_dir())


@contextlib.contextmanager
def guarded(settings: conf.Settings, owner: str
            ) -> Iterator[logbook.RunStore]:
    """Hold the database's lock and open its logbook for the body."""
    from mistral_db_flows import locking

    with locking.hold(settings.database_url,
                      timeout=settings.lock_timeout, owner=owner) as lock:
        # The lock asked the server which database this is: the logbook
        # (and the run's backup) use that answer.
        with logbook.opened(logbook_url(settings), settings.database_url,
                            target_identity=lock.identity) as store:
            yield store


def plan_facts(plan: flows.Plan) -> dict:
    return {"start": plan.start, "target": plan.target,
            "pending": list(plan.pending)}


def fingerprint(flow: Any, plan: flows.Plan) -> dict:
    """What must be the same for a resumed run to be the same run."""
    return {"tasks": flows.atom_names(flow), "start": plan.start,
            "target": plan.target}


# A step in these states is where its run stopped (or died).
_UNFINISHED = (states.StepState.RUNNING, states.StepState.FAILED,
               states.StepState.REVERTING, states.StepState.REVERT_FAILED)
# A run with a step in these states was reverting when it died.
_REVERTING = (states.StepState.FAILED, states.StepState.REVERTING,
              states.StepState.REVERTED, states.StepState.REVERT_FAILED)


def _step(order: list[str], atoms: dict[str, str]) -> str | None:
    """The step a run stopped in (or after), from its atom states."""
    last_done = last_reverted = None
    for name in order:
        state = states.StepState.of_atom(atoms.get(name, ""))
        if state in _UNFINISHED:
            return name
        if state is states.StepState.DONE:
            last_done = name
        elif state is states.StepState.REVERTED:
            # A stopped run's engine reverted (without restoring) every
            # step up to the failed one, the last reverted in order.
            last_reverted = name
    return last_done or last_reverted


def _describe_meta(meta: dict, atoms: dict[str, str]) -> dict:
    plan = meta.get("plan") or {}
    order = (meta.get("fingerprint") or {}).get("tasks") or list(atoms)
    return {"operation": meta.get("operation"),
            "target": plan.get("target"),
            "state": records.run_state(meta),
            "step": _step(order, atoms),
            "started": meta.get("started"),
            "backup": (meta.get("backup") or {}).get("path")}


def describe(fd: Any) -> dict:
    """The interrupted run, as ``status`` shows it."""
    return _describe_meta(fd.meta or {},
                          {ad.name: str(ad.state) for ad in fd})


def _refuse(fd: Any, reason: str) -> exceptions.ResumeRefused:
    info = describe(fd)
    return exceptions.ResumeRefused(reason, operation=info["operation"],
                                    target=info["target"],
                                    step=info["step"])


def resume_plan(fd: Any, operation: str, requested: flows.Plan, *,
                relative: str | None = None) -> flows.Plan:
    """The plan of the interrupted run, if this command continues it.

    ``requested`` is what the command would do now; its ``start`` is
    where the database is now. ``relative`` is a relative request
    (``+2``): the same one continues the interrupted run whatever
    target it gives from where the database is now.
    """
    meta = fd.meta or {}
    if meta.get("operation") != operation:
        raise _refuse(fd, "this is %s" % operation)
    stored = meta.get("plan") or {}
    plan = flows.Plan(stored.get("start"), stored.get("target"),
                      tuple(stored.get("pending") or ()))
    same_relative = relative is not None and meta.get("relative") == relative
    if requested.target != plan.target and not same_relative:
        raise _refuse(fd, "this run asks for %s" % (requested.target
                                                   or "base"))
    path = {plan.start, plan.target, *plan.pending}
    if requested.start not in path and not _reverting(fd):
        raise _refuse(fd, "the database is at %s now, which is not on "
                      "that run's way from %s to %s"
                      % (requested.start or "base", plan.start or "base",
                         plan.target or "base"))
    return plan


def _reverting(fd: Any) -> bool:
    """The run died while reverting: the database may be anywhere (a
    MySQL restore killed after its drops leaves it empty), and resuming
    the revert restores the backup whatever it holds now."""
    if records.run_state(fd.meta) is not states.RunState.RUNNING:
        return False
    return any(states.StepState.of_atom(ad.state) in _REVERTING
               for ad in fd)


def check_fingerprint(fd: Any, flow: Any, plan: flows.Plan) -> None:
    """TaskFlow would run a changed flow out of order: refuse instead."""
    recorded = (fd.meta or {}).get("fingerprint")
    if recorded != fingerprint(flow, plan):
        raise _refuse(fd, "its steps differ from the ones this command "
                      "builds now (task list or plugins changed)")


def read_interrupted(settings: conf.Settings) -> dict | None:
    """The run of this database that has not ended, without waiting.

    Fast for the default SQLite logbook (read directly, no TaskFlow).
    A run recorded as running is either still going (another process
    holds the lock: ``in_progress`` is True and ``holder`` tells who)
    or was interrupted (nobody holds the lock).
    """
    url = logbook_url(settings)
    target = identity.of_url(settings.database_url)
    if logbook.is_local_file(url):
        meta = records.peek_interrupted(url, *logbook.book_uuids(
            target, identity.legacy(settings.database_url)))
        info = _describe_meta(meta, meta.pop("atoms")) if meta else None
    else:
        with logbook.opened(url, settings.database_url,
                            target_identity=target) as store:
            fd = store.interrupted()
            info = describe(fd) if fd is not None else None
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
    with guarded(settings, owner="abandon") as store:
        fd = store.interrupted()
        if fd is None:
            return None
        info = describe(fd)
        store.set_state(fd, states.RunState.ABANDONED)
        return info
