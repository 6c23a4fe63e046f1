"""Resuming: is an interrupted run the one this command would start?

A run records its plan and the names of its steps (its fingerprint)
when it starts. The same command run again continues it from the step
that was running, with that plan; one that cannot safely continue
(another operation or target, a changed flow, a database that moved)
is refused with a way out. ``status`` describes the run from the same
records.
"""
from __future__ import annotations

from typing import Any

from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import states
from mistral_db_flows.logbook import records


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


def describe_meta(meta: dict, atoms: dict[str, str],
                  results: dict[str, Any] | None = None) -> dict:
    """``results``: what the run's steps returned, by step; the backup
    step's is the run's backup when its end was not recorded (killed)."""
    plan = meta.get("plan") or {}
    order = (meta.get("fingerprint") or {}).get("tasks") or list(atoms)
    taken = meta.get("backup") or (results or {}).get("backup")
    return {"operation": meta.get("operation"),
            "target": plan.get("target"),
            "state": records.run_state(meta),
            "step": _step(order, atoms),
            "started": meta.get("started"),
            "backup": taken.get("path") if isinstance(taken, dict)
            else None}


def describe(fd: Any) -> dict:
    """The interrupted run, as ``status`` shows it."""
    return describe_meta(fd.meta or {},
                         {ad.name: str(ad.state) for ad in fd},
                         {ad.name: ad.results for ad in fd})


def _refuse(fd: Any, reason: str,
            advice: str | None = None) -> exceptions.ResumeRefused:
    info = describe(fd)
    return exceptions.ResumeRefused(reason, operation=info["operation"],
                                    target=info["target"],
                                    step=info["step"], advice=advice)


# Set in a run's meta when it lost its lock after a step had failed.
LOST_LOCK_FAILING = "lost_lock_failing"


def resume_plan(fd: Any, operation: str, requested: flows.Plan, *,
                relative: str | None = None) -> flows.Plan:
    """The plan of the interrupted run, if this command continues it.

    ``requested`` is what the command would do now; its ``start`` is
    where the database is now. ``relative`` is a relative request
    (``+2``): the same one continues the interrupted run whatever
    target it gives from where the database is now.
    """
    meta = fd.meta or {}
    if meta.get(LOST_LOCK_FAILING):
        # Another run may have taken the lock and changed the database
        # since: reverting now could undo what that run reported done.
        raise _refuse(
            fd, "that run lost its lock after a step failed, so another "
            "run may have changed the database since",
            advice="check the database (`status`, `current`), then "
            "`abandon` that run and run the command again")
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
    if requested.start not in path and not reverting(fd):
        raise _refuse(fd, "the database is at %s now, which is not on "
                      "that run's way from %s to %s"
                      % (requested.start or "base", plan.start or "base",
                         plan.target or "base"))
    return plan


def reverting(fd: Any) -> bool:
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


def continue_or_start(store: Any, flow: Any, plan: flows.Plan
                      ) -> tuple[Any, bool]:
    """The record a given flow runs under: the database's interrupted
    run when it is a run of the same flow (operation and step names),
    else a new one; (record, resumed). Another flow's or command's
    interrupted run is refused."""
    operation = flows.operation_of(flow)
    fd = store.interrupted()
    if fd is None:
        return store.start(operation, fingerprint(flow, plan),
                           plan=plan_facts(plan)), False
    if (fd.meta or {}).get("operation") != operation:
        raise _refuse(fd, "this is %s" % operation)
    recorded = (fd.meta or {}).get("fingerprint") or {}
    if not same_steps(flows.atom_names(flow), recorded.get("tasks") or [],
                      {ad.name: str(ad.state) for ad in fd}):
        raise _refuse(fd, "its steps differ from the flow given now")
    return fd, True


# A recorded step a rebuilt flow may lack: it was done, or it was
# running and the database is past it already (a flow re-planned from
# the database's revision has no step for a revision it has).
_MAY_BE_LEFT_OUT = (states.StepState.DONE, states.StepState.RUNNING)


def same_steps(names: list[str], recorded: list[str],
               atoms: dict[str, str]) -> bool:
    """Whether a flow with the steps ``names`` continues a run recorded
    with the steps ``recorded`` (atom states ``atoms``): the same steps
    in the same order, except recorded ones done (or running, hence
    re-planned away) before it died. A flow with fewer steps at its end
    (another target) or a new step is another run."""
    remaining = iter(recorded)
    for name in names:
        for old in remaining:
            if old == name:
                break
            if states.StepState.of_atom(atoms.get(old, "")) \
                    not in _MAY_BE_LEFT_OUT:
                return False
        else:
            return False
    return all(states.StepState.of_atom(atoms.get(old, ""))
               in _MAY_BE_LEFT_OUT for old in remaining)
