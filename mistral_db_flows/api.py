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
from typing import Any, TextIO

from mistral_db_flows import conf
from mistral_db_flows import dbapi
from mistral_db_flows import downgrading
from mistral_db_flows import exceptions
from mistral_db_flows import interrupted
from mistral_db_flows import migration
from mistral_db_flows import results
from mistral_db_flows import revert
from mistral_db_flows import revisions
from mistral_db_flows import runs
from mistral_db_flows import version_table


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
    from mistral_db_flows import urls

    graph = revisions.graph()
    head = revisions.single_head(graph)
    database = urls.masked(settings.database_url)
    missing = urls.missing_sqlite_file(settings.database_url)
    if missing:
        return results.Status(current=None, head=head,
                              pending=graph.between(None, head),
                              database=database, missing_file=missing)
    # One connection reads the version and asks which database this is
    # (the logbook is keyed by that).
    with dbapi.sharing(settings.database_url):
        start = revisions.one_revision(
            version_table.read_version(settings.database_url), graph)
        unfinished = interrupted.read(settings)
        # A journal needs a versioned database or a run that died
        # (an unversioned SQLite file may not even exist).
        reverts: list[str] = []
        kept: list[str] = []
        if start is not None or unfinished:
            reverts, kept = revert.pending_and_kept_in(
                settings.database_url)
    return results.Status(current=start, head=head,
                          pending=graph.between(start, head),
                          interrupted=unfinished, database=database,
                          revert_pending=reverts, revert_kept=kept)


# -- flows -----------------------------------------------------------------

def _upgrade_plan(settings: conf.Settings, target: str | None,
                  delta: int | None):
    graph = revisions.graph()
    # A bad target fails before the database is even asked.
    revisions.plan_upgrade(graph, [], target, delta)
    current_revs = version_table.read_version(settings.database_url)
    return graph, revisions.plan_upgrade(graph, current_revs, target, delta)


def upgrade_flow(settings: conf.Settings, target: str | None = "head", *,
                 delta: int | None = None, prefix: str | None = None,
                 revert_on_outer_failure: bool = True):
    """The ``upgrade`` flow (a linear flow) for embedding.

    The target is resolved against the database's revision now (a bad
    one raises here); each migrate step is "upgrade to exactly X" and
    does nothing when the database is already there, so running the
    flow again is harmless.

    Every ``*_flow`` takes ``prefix`` (put before each atom name and
    each symbol its atoms provide, so that several databases' flows
    compose in one parent flow; None keeps the names a recorded run
    knows) and ``revert_on_outer_failure`` (False: our steps revert only
    when one of them failed, not when a host task did). See docs/api.md.
    """
    graph, plan = _upgrade_plan(settings, target, delta)
    return runs.build("upgrade", settings, plan, graph, prefix=prefix,
                      revert_on_outer_failure=revert_on_outer_failure)


def downgrade_flow(settings: conf.Settings, target: str | None, *,
                   prefix: str | None = None,
                   revert_on_outer_failure: bool = True):
    """The ``downgrade`` flow for embedding: one step per revision
    undone, newest first. A revision that destroyed or rewrote data
    whose revert data was not kept raises RevertDataMissing here,
    before anything is built or changed."""
    graph, plan = downgrading.plan(settings, target)
    return runs.build("downgrade", settings, plan, graph, prefix=prefix,
                      revert_on_outer_failure=revert_on_outer_failure)


def _stamp_plan(settings: conf.Settings, revision: str | None):
    graph = revisions.graph()
    revisions.plan_stamp(graph, [], revision)
    current_revs = version_table.read_version(settings.database_url)
    return graph, revisions.plan_stamp(graph, current_revs, revision)


def stamp_flow(settings: conf.Settings, revision: str | None, *,
               prefix: str | None = None,
               revert_on_outer_failure: bool = True):
    """The ``stamp`` flow for embedding."""
    graph, plan = _stamp_plan(settings, revision)
    return runs.build("stamp", settings, plan, graph, prefix=prefix,
                      revert_on_outer_failure=revert_on_outer_failure)


def _here_plan(settings: conf.Settings, to_head: bool = False):
    """A plan that stays where the database is (or checks for head)."""
    graph = revisions.graph()
    start = revisions.one_revision(
        version_table.read_version(settings.database_url), graph)
    target = revisions.single_head(graph) if to_head else start
    return graph, revisions.Plan(start, target)


def populate_flow(settings: conf.Settings, *, prefix: str | None = None,
                  revert_on_outer_failure: bool = True):
    """The ``populate`` flow for embedding."""
    graph, plan = _here_plan(settings)
    return runs.build("populate", settings, plan, graph, prefix=prefix,
                      revert_on_outer_failure=revert_on_outer_failure)


def populate_actions_flow(settings: conf.Settings, *,
                          prefix: str | None = None,
                          revert_on_outer_failure: bool = True):
    """The ``populate_actions`` flow for embedding."""
    graph, plan = _here_plan(settings)
    return runs.build("populate_actions", settings, plan, graph,
                      prefix=prefix,
                      revert_on_outer_failure=revert_on_outer_failure)


def verify_flow(settings: conf.Settings, *, prefix: str | None = None,
                revert_on_outer_failure: bool = True):
    """The ``verify`` flow: the database is at head and as modelled."""
    graph, plan = _here_plan(settings, to_head=True)
    return runs.build("verify", settings, plan, graph, prefix=prefix,
                      revert_on_outer_failure=revert_on_outer_failure)


def run_flow(flow: Any, settings: conf.Settings, *,
             target: str | None = None, progress: Any = None
             ) -> results.Run:
    """Run one of our flows (or an embedder's) as a guarded run.

    The database's lock is held for the whole run (and checked before
    every step) and every step is recorded in the logbook. Raises
    StepFailed (with ``run``, the failed Run) when a step fails.
    """
    return runs.run_flow(flow, settings, target=target, progress=progress)


# -- commands --------------------------------------------------------------

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
        return runs.offline("upgrade", settings, plan, output)
    # A bad target fails before the database is even asked.
    revisions.plan_upgrade(revisions.graph(), [], target, delta)
    # "+N" means N more from where the database is: after a crash the
    # same command means the interrupted run's target, not N from now.
    relative = ("+%d" % delta if delta is not None
                else target if target and target.startswith("+") else None)
    return runs.run_plan("upgrade", settings,
                         lambda: _upgrade_plan(settings, target, delta),
                         progress=progress, relative=relative)


def downgrade(settings: conf.Settings, target: str | None, *,
              sql: bool = False, output: TextIO | None = None,
              progress: Any = None) -> results.Run:
    """Undo revisions down to ``target`` (an id, ``base`` or ``-N``),
    guarded and resumable like ``upgrade`` (see :mod:`downgrading`).
    With ``sql=True`` (``START:END``, or END from head) the script of a
    schema-only range goes to ``output``; nothing connects."""
    if sql:
        plan = revisions.plan_offline_downgrade(revisions.graph(), target)
        return downgrading.offline(settings, plan, output)
    return runs.run_plan("downgrade", settings,
                         lambda: downgrading.plan(settings, target),
                         progress=progress)


def drop_revert_data(settings: conf.Settings) -> list[str]:
    """Drop the revert data kept for ``downgrade`` (and any journal
    left behind), under the database's lock; the kept revisions
    dropped, newest first."""
    return downgrading.drop_kept(settings)


def stamp(settings: conf.Settings, revision: str | None, *,
          sql: bool = False, output: TextIO | None = None,
          progress: Any = None) -> results.Run:
    """Set ``alembic_version`` to ``revision`` without migrating.

    An empty revision is refused (upstream silently empties the table);
    ``base`` empties it on purpose.
    """
    if sql:
        plan = revisions.plan_stamp(revisions.graph(), [], revision)
        return runs.offline("stamp", settings, plan, output)
    revisions.plan_stamp(revisions.graph(), [], revision)
    return runs.run_plan("stamp", settings,
                         lambda: _stamp_plan(settings, revision),
                         progress=progress)


def populate(settings: conf.Settings, *, progress: Any = None
             ) -> results.Run:
    """Write the standard actions and workflows (guarded, resumable)."""
    return runs.run_plan("populate", settings,
                         lambda: _here_plan(settings), progress=progress)


def populate_actions(settings: conf.Settings, *, progress: Any = None
                     ) -> results.Run:
    """Write the standard actions only (guarded, resumable)."""
    return runs.run_plan("populate_actions", settings,
                         lambda: _here_plan(settings), progress=progress)


def verify(settings: conf.Settings, *, progress: Any = None
           ) -> results.Run:
    """Check the database is at head and matches the models."""
    flow = verify_flow(settings)
    graph = revisions.graph()
    return runs.run_flow(flow, settings, target=graph.heads[0],
                         progress=progress)


def cancel() -> int:
    """Cancel, on their servers, the statements this process's runs
    are running or waiting for (any thread may call it, e.g. a signal
    handler's); returns how many sessions were sent a cancel. The run
    then stops with the driver's error as if killed: resumable."""
    from mistral_db_flows import sessions

    return sessions.cancel_statements()


def backups(settings: conf.Settings) -> results.Backups:
    """The backups in the backup directory, newest first (never
    connects: it works while the database is down)."""
    from mistral_db_flows.backup import catalog

    directory = settings.resolved_backup_dir()
    return results.Backups(directory=directory,
                           backups=catalog.listing(directory))


def abandon(settings: conf.Settings) -> dict | None:
    """Forget the database's interrupted run; the database is untouched.

    Returns what the run was (operation, target, step), or None when
    there was none.
    """
    return interrupted.abandon(settings)


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
