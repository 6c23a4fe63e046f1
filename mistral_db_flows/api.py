"""The commands of mistral-db-manage, as Python functions.

Each function takes explicit arguments (a :class:`conf.Settings` and the
command's own), returns a result from :mod:`results` and raises an error
from :mod:`exceptions`; none prints or exits. ``current``, ``status``,
``history``, ``branches`` and ``check_migration`` never import Alembic,
SQLAlchemy or TaskFlow, so they answer fast.

Embedding: :func:`upgrade_flow` (and :func:`stamp_flow`,
:func:`populate_flow`, ...) return the TaskFlow flow a command would run,
for other upgrade tooling to add to its own flow; :func:`run_flow` runs
one of them alone.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Any, TextIO

from mistral_db_flows import conf
from mistral_db_flows import dbapi
from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import migration
from mistral_db_flows import results
from mistral_db_flows import revisions
from mistral_db_flows import runs
from mistral_db_flows import states
from mistral_db_flows import urls
from mistral_db_flows import version_table
from mistral_db_flows.logbook import records


def _settings(settings: conf.Settings | None) -> conf.Settings:
    return settings if settings is not None else conf.Settings()


def _head_label(graph: Any) -> str:
    return ",".join(graph.heads)


# -- reading ---------------------------------------------------------------

def current(settings: conf.Settings) -> results.Current:
    """The database's revision(s), as ``alembic_version`` has them."""
    graph = revisions.graph()
    stamped = version_table.read_version(settings.database_url)
    for rev in stamped:
        if rev not in graph:
            raise exceptions.UnknownRevision(rev, where="database")
    head = _head_label(graph)
    return results.Current(revisions=stamped, head=head,
                           at_head=stamped == [head])


def _info(graph: Any, rev: str) -> results.RevisionInfo:
    f = graph.revisions[rev]
    return results.RevisionInfo(
        id=rev, down_revision=f.down_revision, is_head=rev in graph.heads,
        doc=f.doc, children=list(graph.children[rev]))


def history(settings: conf.Settings | None = None
            ) -> list[results.RevisionInfo]:
    """Every revision, newest first, as ``history`` prints them."""
    graph = revisions.graph()
    return [_info(graph, rev) for rev in reversed(graph.order)]


def branches(settings: conf.Settings | None = None
             ) -> list[results.RevisionInfo]:
    """The branch points (revisions with several children); [] if none."""
    graph = revisions.graph()
    return [_info(graph, rev) for rev in graph.order
            if rev in graph.branch_points]


def check_migration(settings: conf.Settings | None = None
                    ) -> results.Check:
    """One unbroken chain to a single head, or BranchError."""
    graph = revisions.graph()
    revisions.single_head(graph)
    return results.Check(head=graph.heads[0], base=graph.bases[0],
                         revisions=len(graph.revisions))


def status(settings: conf.Settings) -> results.Status:
    """Current revision, head and what an ``upgrade head`` would apply."""
    from mistral_db_flows import dbapi

    graph = revisions.graph()
    head = revisions.single_head(graph)
    # One connection reads the version and asks which database this is
    # (the logbook is keyed by that).
    with dbapi.sharing(settings.database_url):
        start = revisions.one_revision(
            version_table.read_version(settings.database_url), graph)
        interrupted = runs.read_interrupted(settings)
    return results.Status(current=start, head=head,
                          pending=graph.between(start, head),
                          interrupted=interrupted)


# -- flows -----------------------------------------------------------------

def _with_driver(settings: conf.Settings) -> conf.Settings:
    """Settings whose URL names an installed driver (for every tool)."""
    import dataclasses

    from mistral_db_flows import urls

    try:
        parsed = urls.parse(settings.database_url)
    except urls.UrlError:
        return settings  # reading it fails later, with its own error
    url = parsed.with_installed_driver()
    if url == parsed:
        return settings
    return dataclasses.replace(settings, database_url=url.text)


def _build(operation: str, settings: conf.Settings, plan: Any,
           graph: Any, *, fresh_run: bool = False,
           identity: str | None = None):
    settings = _with_driver(settings)
    ctx = flows.BuildContext(
        operation=operation, database_url=settings.database_url,
        plan=plan, head=graph.heads[0] if graph.sound else None,
        settings=settings, fresh_run=fresh_run, identity=identity)
    return flows.build(ctx)


def _upgrade_plan(settings: conf.Settings, target: str | None,
                  delta: int | None):
    graph = revisions.graph()
    # A bad target fails before the database is even asked.
    revisions.plan_upgrade(graph, [], target, delta)
    current_revs = version_table.read_version(settings.database_url)
    return graph, revisions.plan_upgrade(graph, current_revs, target, delta)


def upgrade_flow(settings: conf.Settings, target: str | None = "head", *,
                 delta: int | None = None):
    """The ``upgrade`` flow (a linear flow) for embedding.

    The target is resolved against the database's revision now (a bad
    one raises here); each migrate step is "upgrade to exactly X" and
    does nothing when the database is already there, so running the
    flow again is harmless.
    """
    graph, plan = _upgrade_plan(settings, target, delta)
    return _build("upgrade", settings, plan, graph)


def _stamp_plan(settings: conf.Settings, revision: str | None):
    graph = revisions.graph()
    revisions.plan_stamp(graph, [], revision)
    current_revs = version_table.read_version(settings.database_url)
    return graph, revisions.plan_stamp(graph, current_revs, revision)


def stamp_flow(settings: conf.Settings, revision: str | None):
    """The ``stamp`` flow for embedding."""
    graph, plan = _stamp_plan(settings, revision)
    return _build("stamp", settings, plan, graph)


def _here_plan(settings: conf.Settings, to_head: bool = False):
    """A plan that stays where the database is (or checks for head)."""
    graph = revisions.graph()
    start = revisions.one_revision(
        version_table.read_version(settings.database_url), graph)
    target = revisions.single_head(graph) if to_head else start
    return graph, revisions.Plan(start, target)


def populate_flow(settings: conf.Settings):
    """The ``populate`` flow for embedding."""
    graph, plan = _here_plan(settings)
    return _build("populate", settings, plan, graph)


def populate_actions_flow(settings: conf.Settings):
    """The ``populate_actions`` flow for embedding."""
    graph, plan = _here_plan(settings)
    return _build("populate_actions", settings, plan, graph)


def verify_flow(settings: conf.Settings):
    """The ``verify`` flow: the database is at head and as modelled."""
    graph, plan = _here_plan(settings, to_head=True)
    return _build("verify", settings, plan, graph)


def run_flow(flow: Any, settings: conf.Settings, *,
             target: str | None = None, progress: Any = None
             ) -> results.Run:
    """Run one of our flows (or an embedder's) as a guarded run.

    The database's lock is held for the whole run and every step is
    recorded in the logbook. Raises StepFailed (with ``run``, the failed
    Run) when a step fails.
    """
    settings = _with_driver(settings)
    operation = flows.operation_of(flow)
    plan = revisions.Plan(None, target)
    # One connection for the run's steps (see _run_plan).
    with dbapi.sharing(settings.database_url):
        # Reachable, with a valid URL, before the lock is asked for.
        version_table.read_version(settings.database_url)
        with runs.guarded(settings, owner=operation) as store:
            fd = store.start(operation, runs.fingerprint(flow, plan),
                             plan=runs.plan_facts(plan))
            return _execute(flow, settings, store, fd, plan,
                            progress=progress)


def _execute(flow: Any, settings: conf.Settings, store: Any, fd: Any,
             plan: Any, *, prior_backup: dict | None = None,
             resumed: bool = False, progress: Any = None) -> results.Run:
    """Run (or resume) ``flow`` under ``fd``; settle the logbook."""
    operation = flows.operation_of(flow)
    before = version_table.read_version(settings.database_url)
    # What an earlier, killed attempt of this run recorded: its backup
    # and the step that failed (a resumed revert does not run them).
    recorded = {ad.name: ad for ad in fd}
    earlier_backup = getattr(recorded.get("backup"), "results", None)
    earlier_failure = next(
        (name for name in flows.atom_names(flow)
         if getattr(recorded.get(name), "failure", None) is not None),
        None)
    outcome = flows.run(flow, store={"prior_backup": prior_backup},
                        flow_detail=fd, backend=store.backend,
                        progress=progress)
    try:
        after = version_table.read_version(settings.database_url)
    except exceptions.MistralDbError:
        after = []
    # The step's own result: after a revert TaskFlow forgets the value.
    taken = ({st.name: st.detail for st in outcome.steps}.get("backup")
             or (earlier_backup if isinstance(earlier_backup, dict)
                 else None)
             or prior_backup)
    run = results.Run(operation=operation, state=states.RunState.FAILED,
                      start_revision=plan.start if resumed else (
                          before[0] if before else None),
                      end_revision=after[0] if after else None,
                      steps=outcome.steps,
                      backup=(taken or {}).get("path"),
                      target=plan.target, resumed=resumed)
    if outcome.cause is None:
        store.set_state(fd, states.RunState.FINISHED)
        _prune_backups(settings, taken)
        if operation in ("upgrade", "stamp") and before == after \
                and not resumed:
            run.state = results.Outcome.UNCHANGED
        else:
            run.state = results.Outcome.succeeded(operation)
        return run
    backup_step = {s.name: s.state for s in outcome.steps}.get("backup")
    restore_error: BaseException | str | None = None
    if operation == "verify":
        # Read-only: nothing to restore or resume.
        store.set_state(fd, states.RunState.FAILED)
        aftermath = None
    elif outcome.failed_step == "backup" \
            and flows.atom_names(flow)[:1] == ["backup"]:
        # The first step failed: nothing changed, nothing to resume.
        store.set_state(fd, states.RunState.FAILED)
        aftermath = "nothing was changed"
    elif taken and settings.restores_on_failure \
            and backup_step == states.StepState.REVERTED:
        run.state = states.RunState.REVERTED
        store.set_state(fd, states.RunState.REVERTED)
        aftermath = ("the database was restored from the backup %s"
                     % taken.get("path") if taken.get("path") else
                     "the database file it created was removed")
    elif backup_step == states.StepState.REVERT_FAILED:
        run.state = states.RunState.REVERT_FAILED
        # Recorded as stopped (resumable): the next run retries the
        # restore before anything else (see _retry_restore).
        store.set_state(fd, states.RunState.STOPPED, backup=taken,
                        revert_failed=True)
        restore_error = outcome.revert_causes.get("backup") \
            or "the restore failed"
        aftermath = ("restoring the backup %s failed too: restore it by "
                     "hand (see docs/safety.md)" % (taken or {}).get("path"))
    else:
        run.state = states.RunState.STOPPED
        store.set_state(fd, states.RunState.STOPPED, backup=taken)
        aftermath = ("the database was left as it is (at %s) for "
                     "inspection: run the same command to resume, or "
                     "`abandon`" % (run.end_revision or "base"))
    failed_step = outcome.failed_step
    if failed_step in (None, "flow") and earlier_failure:
        failed_step = earlier_failure
    raise exceptions.StepFailed(failed_step or "flow",
                                _known(outcome.cause, settings.database_url),
                                run=run, aftermath=aftermath,
                                restore_error=restore_error)


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


def _prune_backups(settings: conf.Settings, taken: dict | None) -> None:
    if not taken:
        return
    from mistral_db_flows import backup

    backup.prune(settings.resolved_backup_dir(), settings.backup_keep)


# -- commands --------------------------------------------------------------

def _offline(operation: str, settings: conf.Settings, plan: Any,
             output: TextIO | None) -> results.Run:
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


def _retry_restore(settings: conf.Settings, store: Any, fd: Any,
                   operation: str) -> None:
    """Restore the backup an interrupted run failed to restore; raise
    StepFailed (state ``reverted``) saying so, or RestoreError again."""
    from mistral_db_flows import backup

    meta = fd.meta or {}
    taken = meta.get("backup") or {}
    step = runs.describe(fd)["step"] or "backup"
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


def _run_plan(operation: str, settings: conf.Settings, planner: Any,
              *, progress: Any = None, relative: str | None = None
              ) -> results.Run:
    """Plan under the lock, resume an interrupted run or start one."""
    settings = _with_driver(settings)
    # One connection for the whole run (version reads, the backup's
    # measurements, migrate steps, populate, verify); the lock keeps
    # its own.
    with dbapi.sharing(settings.database_url):
        return _run_plan_sharing(operation, settings, planner,
                                 progress=progress, relative=relative)


def _run_plan_sharing(operation: str, settings: conf.Settings,
                      planner: Any, *, progress: Any,
                      relative: str | None) -> results.Run:
    # Plan first without the lock: a bad URL, an unreachable server or
    # an unknown revision fails with its own error before anything else.
    planner()
    with runs.guarded(settings, owner=operation) as store:
        # Plan again under the lock: a run we waited for may have moved
        # the database already.
        graph, plan = planner()
        fd = store.interrupted()
        prior_backup = None
        resumed = fd is not None
        if fd is not None:
            try:
                plan = runs.resume_plan(fd, operation, plan,
                                        relative=relative)
            except exceptions.ResumeRefused:
                if not (fd.meta or {}).get("revert_failed"):
                    raise
                # Its restore failed half-way (MariaDB cannot restore in
                # one transaction): finish that first, never forget it.
                _retry_restore(settings, store, fd, operation)
            if records.run_state(fd.meta) is states.RunState.STOPPED:
                # A stopped run's engine has reverted; continue in a new
                # run that keeps the first attempt's backup.
                prior_backup = (fd.meta or {}).get("backup")
                store.set_state(fd, states.RunState.RESUMED)
                fd = None
        elif plan.unchanged and operation in ("upgrade", "stamp"):
            return results.Run(operation=operation,
                               state=results.Outcome.UNCHANGED,
                               start_revision=plan.start,
                               end_revision=plan.target,
                               target=plan.target)
        fresh = fd is None
        if fresh and settings.backup and not prior_backup:
            from mistral_db_flows import backup
            from mistral_db_flows.tasks import backup as backup_task

            # A backup that cannot be made is refused before any
            # change, with the backup's own error.
            if not backup_task.missing_sqlite_file(settings.database_url):
                backup.check_can_backup(settings.database_url,
                                        settings.resolved_backup_dir())
        # A fresh run's backup starts while the flow is built.
        flow = _build(operation, settings, plan, graph,
                      fresh_run=fresh and not prior_backup,
                      identity=store.identity)
        if fd is not None:
            runs.check_fingerprint(fd, flow, plan)
        else:
            fd = store.start(operation, runs.fingerprint(flow, plan),
                             plan=runs.plan_facts(plan), relative=relative)
        return _execute(flow, settings, store, fd, plan,
                        prior_backup=prior_backup, resumed=resumed,
                        progress=progress)


def upgrade(settings: conf.Settings, target: str | None = None, *,
            delta: int | None = None, sql: bool = False,
            output: TextIO | None = None, progress: Any = None
            ) -> results.Run:
    """Upgrade to ``target`` (``head``, ``NNN``, ``+N``) or by ``delta``.

    With ``sql=True`` nothing connects: the Alembic script for
    ``target`` (from an empty database) or ``start:end`` is written to
    ``output`` (default stdout) and the Run's state is ``offline``.
    Otherwise the run is guarded (see :func:`run_flow`); an interrupted
    upgrade to the same target is resumed.
    """
    if sql:
        plan = revisions.plan_offline(revisions.graph(), target, delta)
        return _offline("upgrade", settings, plan, output)
    # A bad target fails before the database is even asked.
    revisions.plan_upgrade(revisions.graph(), [], target, delta)
    # "+N" means N more from where the database is: after a crash the
    # same command means the interrupted run's target, not N from now.
    relative = ("+%d" % delta if delta is not None
                else target if target and target.startswith("+") else None)
    return _run_plan("upgrade", settings,
                     lambda: _upgrade_plan(settings, target, delta),
                     progress=progress, relative=relative)


def stamp(settings: conf.Settings, revision: str | None, *,
          sql: bool = False, output: TextIO | None = None,
          progress: Any = None) -> results.Run:
    """Set ``alembic_version`` to ``revision`` without migrating.

    An empty revision is refused (upstream silently empties the table);
    ``base`` empties it on purpose.
    """
    if sql:
        plan = revisions.plan_stamp(revisions.graph(), [], revision)
        return _offline("stamp", settings, plan, output)
    revisions.plan_stamp(revisions.graph(), [], revision)
    return _run_plan("stamp", settings,
                     lambda: _stamp_plan(settings, revision),
                     progress=progress)


def populate(settings: conf.Settings, *, progress: Any = None
             ) -> results.Run:
    """Write the standard actions and workflows (guarded, resumable)."""
    return _run_plan("populate", settings,
                     lambda: _here_plan(settings), progress=progress)


def populate_actions(settings: conf.Settings, *, progress: Any = None
                     ) -> results.Run:
    """Write the standard actions only (guarded, resumable)."""
    return _run_plan("populate_actions", settings,
                     lambda: _here_plan(settings), progress=progress)


def verify(settings: conf.Settings, *, progress: Any = None
           ) -> results.Run:
    """Check the database is at head and matches the models."""
    flow = verify_flow(settings)
    graph = revisions.graph()
    return run_flow(flow, settings, target=graph.heads[0],
                    progress=progress)


def abandon(settings: conf.Settings) -> dict | None:
    """Forget the database's interrupted run; the database is untouched.

    Returns what the run was (operation, target, step), or None when
    there was none.
    """
    return runs.abandon(settings)


# -- revision --------------------------------------------------------------

_REV_ID = re.compile(r"^[A-Za-z0-9_]+$")


def _writable_source(location: str) -> bool:
    """A source checkout we may write to (not an installed package)."""
    parts = set(os.path.normpath(location).split(os.sep))
    if parts & {"site-packages", "dist-packages"}:
        return False
    if not os.path.exists(os.path.join(os.path.dirname(location),
                                       "setup.cfg")):
        return False
    return os.access(os.path.join(location, "versions"), os.W_OK)


def next_revision_id(head: str) -> str:
    """head + 1, zero-padded like the chain (``045`` -> ``046``)."""
    if not head.isdigit():
        raise exceptions.BadTarget(
            None, "the head %r is not a number: give --rev-id" % head)
    return str(int(head) + 1).zfill(len(head))


def revision(settings: conf.Settings, message: str, *,
             autogenerate: bool = False,
             rev_id: str | None = None) -> results.NewRevision:
    """Write a new revision file into the source tree's migrations.

    ``autogenerate`` compares the models with the database (which must
    be at head) and writes the differences as operations.
    """
    location = revisions.script_location()
    if not _writable_source(location):
        raise exceptions.ReadOnlyMigrations(location)
    graph = revisions.graph()
    head = check_migration(settings).head
    if rev_id is None:
        rev_id = next_revision_id(head)
    elif not _REV_ID.match(rev_id):
        raise exceptions.BadTarget(
            rev_id, "--rev-id %r: use letters, digits and _" % rev_id)
    elif rev_id in graph:
        raise exceptions.BadTarget(
            rev_id, "revision %s exists already" % rev_id)
    metadata = None
    url = None
    if autogenerate:
        from mistral_db_flows.tasks import verify as verify_task

        if not verify_task.models_available():
            raise exceptions.BadTarget(
                None, "--autogenerate needs mistral_db_flows.models")
        status_now = status(settings)
        if not status_now.at_head:
            raise exceptions.BadTarget(
                None, "--autogenerate compares the models with the "
                "database, which must be at head %s (it is at %s): "
                "upgrade it first" % (head, status_now.current or "base"))
        from mistral_db_flows import models

        metadata = models.metadata
        url = settings.database_url
    path = migration.new_revision(message, rev_id,
                                  autogenerate=autogenerate, url=url,
                                  target_metadata=metadata)
    return results.NewRevision(path=path, revision=rev_id,
                               down_revision=head, message=message)
