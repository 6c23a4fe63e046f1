"""Guarded runs: the engine behind every command that changes a database.

A run goes through named phases:

* plan: what the command would do (a :class:`revisions.Plan`), once
  without the lock so that a bad URL or target fails first, then again
  under it;
* guard: hold the database's lock and open its logbook
  (:mod:`guarding`); find the interrupted run this command continues
  (:mod:`resume`); list the other sessions connected to the database;
* build: the flow of the configured task plugins (:func:`flows.build`);
* execute: TaskFlow runs it, recording every step in the logbook; the
  lock is a fence, checked before every step and every commit of the
  run's connection (:mod:`fencing`), so a run that lost it stops
  without committing more or reverting, resumable (``LockLost``);
* outcome: TaskFlow's outcome and the logbook become a
  :class:`results.Run`, or a ``StepFailed`` saying what is left
  (:func:`aftermath.settle` names the states and the words).

Runs that did not end are in :mod:`interrupted`; what goes when a run
ends in :mod:`run_cleanup`.
"""
from __future__ import annotations

import dataclasses
import logging
import weakref
from typing import Any, Callable, TextIO

from mistral_db_flows import aftermath
from mistral_db_flows import composing
from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import guarding
from mistral_db_flows import interrupted
from mistral_db_flows import resume
from mistral_db_flows import results
from mistral_db_flows import run_cleanup
from mistral_db_flows import states
from mistral_db_flows import urls
from mistral_db_flows import version_table
from mistral_db_flows.logbook import records

LOG = logging.getLogger(__name__)

# What a planner returns: the revision graph and the plan made on it.
Planner = Callable[[], "tuple[Any, flows.Plan]"]


# -- build -----------------------------------------------------------------

def with_driver(settings: conf.Settings) -> conf.Settings:
    """Settings whose URL names an installed driver (for every tool)."""
    try:
        parsed = urls.parse(settings.database_url)
    except urls.UrlError:
        return settings  # reading it fails later, with its own error
    url = parsed.with_installed_driver()
    if url == parsed:
        return settings
    return dataclasses.replace(settings, database_url=url.text)


def build(operation: str, settings: conf.Settings, plan: flows.Plan,
          graph: Any, *, fresh_run: bool = False,
          identity: str | None = None, prefix: str | None = None,
          revert_on_outer_failure: bool = True):
    """The flow of ``operation`` doing ``plan`` (atom names prefixed
    with ``prefix``; reverting for the host's failures or not: see
    :mod:`composing`)."""
    settings = with_driver(settings)
    ctx = flows.BuildContext(
        operation=operation, database_url=settings.database_url,
        plan=plan, head=graph.heads[0] if graph.sound else None,
        settings=settings, fresh_run=fresh_run, identity=identity)
    flow = composing.namespaced(flows.build(ctx), prefix)
    if not revert_on_outer_failure:
        flow = composing.revert_only_own_failures(flow)
    _PLANNED[flow] = plan
    return flow


# The plans of the flows build() made: a run of a flow holding one
# (an embedder's parent flow) records that plan's target.
_PLANNED: "weakref.WeakKeyDictionary[Any, flows.Plan]" = \
    weakref.WeakKeyDictionary()


def planned_target(flow: Any) -> str | None:
    """The target revision of the last flow of ours in ``flow`` (the
    flow itself or one nested in it); None when it holds none."""
    from taskflow import flow as tf_flow

    found = None
    pending = [flow]
    while pending:
        item = pending.pop(0)
        if item in _PLANNED:
            found = _PLANNED[item].target
        pending.extend(child for child, _meta in item.iter_nodes()
                       if isinstance(child, tf_flow.Flow))
    return found


def _check_can_backup(operation: str, settings: conf.Settings) -> None:
    """A backup that cannot be made is refused before any change, with
    the backup's own error."""
    from mistral_db_flows import backup

    if not settings.takes_dump(operation):
        return
    if not urls.missing_sqlite_file(settings.database_url):
        backup.check_can_backup(settings.database_url,
                                settings.resolved_backup_dir())


# -- plan, guard, build, execute -------------------------------------------

def run_plan(operation: str, settings: conf.Settings, planner: Planner,
             *, progress: Any = None, relative: str | None = None
             ) -> results.Run:
    """Plan under the lock, resume an interrupted run or start one."""
    from mistral_db_flows import dbapi
    from mistral_db_flows import preflight

    settings = with_driver(settings)
    # What can fail without the database fails first: nothing changed,
    # nothing copied, nothing to restore (also when at head already).
    sources = preflight.check(operation, settings)
    # One connection for the whole run (version reads, the backup's
    # measurements, migrate steps, populate, verify); the lock keeps
    # its own.
    with dbapi.sharing(settings.database_url):
        # Plan first without the lock: a bad URL, an unreachable server
        # or an unknown revision fails with its own error first.
        planner()
        with guarding.guard(settings, owner=operation,
                           progress=progress) as held:
            return _run_guarded(operation, settings, planner, held,
                                progress=progress, relative=relative,
                                sources=sources)


def _run_guarded(operation: str, settings: conf.Settings,
                 planner: Planner, held: guarding.Guard, *, progress: Any,
                 relative: str | None, sources: Any = None) -> results.Run:
    store = held.store
    # Plan again under the lock: a run we waited for may have moved the
    # database already.
    graph, plan = planner()
    fd = store.interrupted()
    if fd is not None and interrupted.finish_revert(settings, store, fd, operation,
                                         plan, relative):
        # The database moved back: plan again from where it is now.
        graph, plan = planner()
        fd = None
    prior_backup = None
    resumed = fd is not None
    if fd is not None:
        try:
            plan = resume.resume_plan(fd, operation, plan,
                                      relative=relative)
            if progress is not None:
                progress(resume.describe(fd)["step"], "resuming", fd.uuid)
        except exceptions.ResumeRefused:
            if not (fd.meta or {}).get("revert_failed"):
                raise
            # Its restore failed half-way (MariaDB cannot restore in one
            # transaction): finish that first, never forget it.
            interrupted.retry_restore(settings, store, fd, operation)
        if records.run_state(fd.meta) is states.RunState.STOPPED:
            # A stopped run's engine has reverted; continue in a new run
            # that keeps the first attempt's backup.
            prior_backup = (fd.meta or {}).get("backup")
            store.set_state(fd, states.RunState.RESUMED)
            fd = None
    elif plan.unchanged and operation in ("upgrade", "stamp", "downgrade"):
        return results.Run(operation=operation,
                           state=results.Outcome.UNCHANGED,
                           start_revision=plan.start,
                           end_revision=plan.target, target=plan.target)
    guarding.check_others(settings, progress)
    fresh = fd is None
    if fresh and not prior_backup:
        _check_can_backup(operation, settings)
    # A fresh run's backup starts while the flow is built.
    flow = build(operation, settings, plan, graph,
                 fresh_run=fresh and not prior_backup,
                 identity=store.identity)
    if fd is not None:
        resume.check_fingerprint(fd, flow, plan)
    else:
        fd = store.start(operation, resume.fingerprint(flow, plan),
                         plan=resume.plan_facts(plan), relative=relative)
    return execute(flow, settings, held, fd, plan,
                   prior_backup=prior_backup, resumed=resumed,
                   progress=progress, sources=sources)


def run_flow(flow: Any, settings: conf.Settings, *,
             target: str | None = None, progress: Any = None
             ) -> results.Run:
    """Run a built flow (ours or an embedder's) as a guarded run."""
    from mistral_db_flows import dbapi

    settings = with_driver(settings)
    operation = flows.operation_of(flow)
    plan = flows.Plan(None, target or planned_target(flow))
    with dbapi.sharing(settings.database_url):
        # Reachable, with a valid URL, before the lock is asked for.
        version_table.read_version(settings.database_url)
        with guarding.guard(settings, owner=operation,
                            progress=progress) as held:
            # The interrupted run of this same flow, if any, resumes.
            fd, resumed = resume.continue_or_start(held.store, flow, plan)
            return execute(flow, settings, held, fd, plan,
                           resumed=resumed, progress=progress)


def execute(flow: Any, settings: conf.Settings, held: guarding.Guard,
            fd: Any, plan: flows.Plan, *, prior_backup: dict | None = None,
            resumed: bool = False, progress: Any = None,
            sources: Any = None) -> results.Run:
    """Run (or resume) ``flow`` under ``fd``; settle the logbook.
    ``sources``: the preflight's definition sources, for populate."""
    store = held.store
    before = version_table.read_version(settings.database_url)
    # What an earlier, killed attempt of this run recorded: its backup
    # and the step that failed (a resumed revert does not run them).
    recorded = {ad.name: ad for ad in fd}
    earlier_backup = getattr(recorded.get("backup"), "results", None)
    earlier_failure = next(
        (name for name in flows.atom_names(flow)
         if getattr(recorded.get(name), "failure", None) is not None),
        None)
    from mistral_db_flows import dbapi
    from mistral_db_flows.tasks import populate as populate_task

    # The fence: every commit of the run's work checks the lock first.
    shared = dbapi.active(settings.database_url)
    if shared is not None:
        shared.fence = held.fence
    try:
        outcome = flows.run(flow, store={"prior_backup": prior_backup,
                                         "run_id": fd.uuid},
                            flow_detail=fd, backend=store.backend,
                            progress=progress, before_step=held.check,
                            transient={populate_task.SOURCES: sources}
                            if sources is not None else None)
    except exceptions.LockLost:
        if any(getattr(ad, "failure", None) is not None for ad in fd):
            # Halted before its revert: never resume that revert.
            store.set_state(fd, states.RunState.RUNNING,
                            **{resume.LOST_LOCK_FAILING: True})
        raise
    finally:
        if shared is not None:
            shared.fence = None
    try:
        after = version_table.read_version(settings.database_url)
    except exceptions.MistralDbError:
        after = []
    # The step's own result: after a revert TaskFlow forgets the value.
    taken = ({st.name: st.detail for st in outcome.steps}.get("backup")
             or (earlier_backup if isinstance(earlier_backup, dict)
                 else None)
             or prior_backup)
    operation = flows.operation_of(flow)
    facts = aftermath.Facts(
        operation=operation, failed=outcome.cause is not None,
        failed_step=outcome.failed_step,
        starts_with_backup=flows.atom_names(flow)[:1] == ["backup"],
        self_reverting=operation in _self_reverting() + ("downgrade",),
        undoes=settings.on_failure == "revert",
        backup=taken, restores=settings.restores_on_failure,
        backup_step={s.name: s.state for s in outcome.steps}.get("backup"),
        steps_revert=settings.restores_on_failure
        and settings.keeps_step_reverts and operation in ("upgrade",
                                                          "stamp"),
        revert_failed_step=next(
            (s.name for s in outcome.steps if s.name != "backup"
             and s.state == states.StepState.REVERT_FAILED), None),
        unchanged=before == after and not resumed,
        end_revision=after[0] if after else None)
    settled = aftermath.settle(facts)
    store.set_state(fd, settled.logbook_state, **settled.logbook_facts)
    run_cleanup.prune_runs(store, settings.runs_keep)
    run = results.Run(operation=operation, state=settled.run_state,
                      start_revision=plan.start if resumed else (
                          before[0] if before else None),
                      end_revision=facts.end_revision,
                      steps=outcome.steps,
                      backup=(taken or {}).get("path"),
                      target=plan.target, resumed=resumed)
    if not facts.failed:
        populated = operation not in ("upgrade", "stamp", "downgrade")
        if settings.keeps_step_reverts or populated:
            # (An embedder's flow names its own operation.)
            run_cleanup.drop_revert_journal(
                settings, populated=populated, run_id=fd.uuid,
                keep=settings.keep_revert_data and operation == "upgrade")
        run_cleanup.prune_backups(settings, taken)
        return run
    failed_step = outcome.failed_step
    if failed_step in (None, "flow") and earlier_failure:
        failed_step = earlier_failure
    restore_error = None
    if settled.run_state is states.RunState.REVERT_FAILED:
        restore_error = outcome.revert_causes.get("backup") \
            or "the restore failed"
    raise exceptions.StepFailed(failed_step or "flow",
                                _known(outcome.cause, settings.database_url),
                                run=run, aftermath=settled.aftermath,
                                restore_error=restore_error)


# -- outcome ---------------------------------------------------------------

def _known(cause: BaseException | str | None, url: str
           ) -> BaseException | str:
    """A step's failure as one of our errors where we know what it
    means, so that it exits with that error's code: a driver saying the
    server ended the session is ConnectionLost (3, not 7)."""
    if not isinstance(cause, BaseException):
        return cause or "unknown failure"
    if not exceptions.is_connection_lost(cause):
        return cause
    driver = getattr(cause, "orig", None) or cause
    args = driver.args
    # PyMySQL's message is its second argument (the first a number).
    said = args[1] if len(args) > 1 and isinstance(args[0], int) else driver
    lost = exceptions.ConnectionLost(urls.masked(url),
                                     urls.mask_text(str(said), (url,)))
    lost.__cause__ = cause
    return lost


def _self_reverting() -> tuple[str, ...]:
    from mistral_db_flows.tasks import backup as backup_task

    return backup_task.SELF_REVERTING


# -- offline ---------------------------------------------------------------

def offline(operation: str, settings: conf.Settings, plan: Any,
            output: TextIO | None) -> results.Run:
    """Write the SQL script of an upgrade or stamp; nothing connects."""
    import sys

    from mistral_db_flows import migration

    migration.check_url(settings.database_url)
    out = output if output is not None else sys.stdout
    if operation == "upgrade":
        target = (plan.target if plan.start is None
                  else "%s:%s" % (plan.start, plan.target))
        migration.upgrade(settings.database_url, target, sql=True,
                          output=out)
    else:
        migration.stamp(settings.database_url, plan.target or "base",
                        sql=True, output=out)
    return results.Run(operation=operation, state=results.Outcome.OFFLINE,
                       start_revision=plan.start, end_revision=plan.target,
                       target=plan.target)

