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
from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import migration
from mistral_db_flows import results


def _settings(settings: conf.Settings | None) -> conf.Settings:
    return settings if settings is not None else conf.Settings()


def _head_label(graph: Any) -> str:
    return ",".join(graph.heads)


# -- reading ---------------------------------------------------------------

def current(settings: conf.Settings) -> results.Current:
    """The database's revision(s), as ``alembic_version`` has them."""
    graph = migration.graph()
    revisions = migration.read_version(settings.database_url)
    for rev in revisions:
        if rev not in graph:
            raise exceptions.UnknownRevision(rev, where="database")
    head = _head_label(graph)
    return results.Current(revisions=revisions, head=head,
                           at_head=revisions == [head])


def _info(graph: Any, rev: str) -> results.RevisionInfo:
    f = graph.revisions[rev]
    return results.RevisionInfo(
        id=rev, down_revision=f.down_revision, is_head=rev in graph.heads,
        doc=f.doc, children=list(graph.children[rev]))


def history(settings: conf.Settings | None = None
            ) -> list[results.RevisionInfo]:
    """Every revision, newest first, as ``history`` prints them."""
    graph = migration.graph()
    return [_info(graph, rev) for rev in reversed(graph.order)]


def branches(settings: conf.Settings | None = None
             ) -> list[results.RevisionInfo]:
    """The branch points (revisions with several children); [] if none."""
    graph = migration.graph()
    return [_info(graph, rev) for rev in graph.order
            if rev in graph.branch_points]


def check_migration(settings: conf.Settings | None = None
                    ) -> results.Check:
    """One unbroken chain to a single head, or BranchError."""
    graph = migration.graph()
    flows.single_head(graph)
    return results.Check(head=graph.heads[0], base=graph.bases[0],
                         revisions=len(graph.revisions))


def status(settings: conf.Settings) -> results.Status:
    """Current revision, head and what an ``upgrade head`` would apply."""
    graph = migration.graph()
    head = flows.single_head(graph)
    start = flows.one_revision(
        migration.read_version(settings.database_url), graph)
    return results.Status(current=start, head=head,
                          pending=graph.between(start, head))


# -- flows -----------------------------------------------------------------

def _build(operation: str, settings: conf.Settings, plan: Any,
           graph: Any):
    ctx = flows.BuildContext(
        operation=operation, database_url=settings.database_url,
        plan=plan, head=graph.heads[0] if graph.sound else None,
        settings=settings)
    return flows.build(ctx)


def _upgrade_plan(settings: conf.Settings, target: str | None,
                  delta: int | None):
    graph = migration.graph()
    # A bad target fails before the database is even asked.
    flows.plan_upgrade(graph, [], target, delta)
    current_revs = migration.read_version(settings.database_url)
    return graph, flows.plan_upgrade(graph, current_revs, target, delta)


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
    graph = migration.graph()
    flows.plan_stamp(graph, [], revision)
    current_revs = migration.read_version(settings.database_url)
    return graph, flows.plan_stamp(graph, current_revs, revision)


def stamp_flow(settings: conf.Settings, revision: str | None):
    """The ``stamp`` flow for embedding."""
    graph, plan = _stamp_plan(settings, revision)
    return _build("stamp", settings, plan, graph)


def _here_plan(settings: conf.Settings, to_head: bool = False):
    """A plan that stays where the database is (or checks for head)."""
    graph = migration.graph()
    start = flows.one_revision(
        migration.read_version(settings.database_url), graph)
    target = flows.single_head(graph) if to_head else start
    return graph, flows.Plan(start, target)


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
             target: str | None = None) -> results.Run:
    """Run one of our flows on TaskFlow's serial engine.

    Raises StepFailed (with ``run``, the failed Run) when a step fails.
    """
    operation = flows.operation_of(flow)
    before = migration.read_version(settings.database_url)
    outcome = flows.run(flow)
    try:
        after = migration.read_version(settings.database_url)
    except exceptions.MistralDbError:
        after = []
    start = before[0] if before else None
    end = after[0] if after else None
    run = results.Run(operation=operation, state=results.FAILED,
                      start_revision=start, end_revision=end,
                      steps=outcome.steps,
                      backup=outcome.values.get("backup"), target=target)
    if outcome.cause is not None:
        raise exceptions.StepFailed(outcome.failed_step or "flow",
                                    outcome.cause, run=run)
    if operation in ("upgrade", "stamp") and before == after:
        run.state = results.UNCHANGED
    else:
        run.state = results.DONE_STATE.get(operation, "done")
    return run


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
    return results.Run(operation=operation, state=results.OFFLINE,
                       start_revision=plan.start, end_revision=plan.target,
                       target=plan.target)


def _run_plan(operation: str, settings: conf.Settings, plan: Any,
              graph: Any) -> results.Run:
    if plan.unchanged:
        return results.Run(operation=operation, state=results.UNCHANGED,
                           start_revision=plan.start,
                           end_revision=plan.target, target=plan.target)
    flow = _build(operation, settings, plan, graph)
    return run_flow(flow, settings, target=plan.target)


def upgrade(settings: conf.Settings, target: str | None = None, *,
            delta: int | None = None, sql: bool = False,
            output: TextIO | None = None) -> results.Run:
    """Upgrade to ``target`` (``head``, ``NNN``, ``+N``) or by ``delta``.

    With ``sql=True`` nothing connects: the Alembic script for
    ``target`` (from an empty database) or ``start:end`` is written to
    ``output`` (default stdout) and the Run's state is ``offline``.
    """
    if sql:
        plan = flows.plan_offline(migration.graph(), target, delta)
        return _offline("upgrade", settings, plan, output)
    graph, plan = _upgrade_plan(settings, target, delta)
    return _run_plan("upgrade", settings, plan, graph)


def stamp(settings: conf.Settings, revision: str | None, *,
          sql: bool = False, output: TextIO | None = None
          ) -> results.Run:
    """Set ``alembic_version`` to ``revision`` without migrating.

    An empty revision is refused (upstream silently empties the table);
    ``base`` empties it on purpose.
    """
    if sql:
        plan = flows.plan_stamp(migration.graph(), [], revision)
        return _offline("stamp", settings, plan, output)
    graph, plan = _stamp_plan(settings, revision)
    return _run_plan("stamp", settings, plan, graph)


def populate(settings: conf.Settings) -> results.Run:
    """Run the ``populate`` flow (its content comes in a later release)."""
    return run_flow(populate_flow(settings), settings)


def populate_actions(settings: conf.Settings) -> results.Run:
    """Run the ``populate_actions`` flow."""
    return run_flow(populate_actions_flow(settings), settings)


def verify(settings: conf.Settings) -> results.Run:
    """Check the database is at head and matches the models."""
    flow = verify_flow(settings)
    graph = migration.graph()
    return run_flow(flow, settings, target=graph.heads[0])


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
    location = migration.script_location()
    if not _writable_source(location):
        raise exceptions.ReadOnlyMigrations(location)
    graph = migration.graph()
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
