"""``downgrade``'s checks and its offline script; dropping kept data.

Which revisions can be undone is decided before anything changes: a
revision whose run kept its revert data (or whose journal an attempt
cut off left) is replayed from it; any other must be schema-only, as
its plan (:mod:`revert.plan`) says. The first revision on the way
that is neither refuses the whole downgrade (RevertDataMissing).
"""
from __future__ import annotations

from typing import Any, TextIO

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import results
from mistral_db_flows import revisions


def plan(settings: conf.Settings, target: str | None
         ) -> tuple[Any, revisions.Plan]:
    """The graph and the plan of ``downgrade target``, checked."""
    from mistral_db_flows import version_table

    graph = revisions.graph()
    # A bad target fails before the database is even asked.
    revisions.plan_downgrade(graph, None, target)
    current = version_table.read_version(settings.database_url)
    planned = revisions.plan_downgrade(graph, current, target)
    check(settings.database_url, planned)
    return graph, planned


def check(database_url: str, plan: revisions.Plan) -> None:
    """Refuse ``plan`` (newest first) at its first revision that needs
    revert data the database does not hold."""
    if not plan.pending:
        return
    from mistral_db_flows import revert
    from mistral_db_flows.tasks import downgrade

    held = set(revert.replayable_in(database_url))
    for revision in plan.pending:
        if revision in held:
            continue
        try:
            downgrade.planned(database_url, revision)
        except exceptions.RevertDataMissing as exc:
            raise exceptions.RevertDataMissing(
                revision, exc.reason, plan.target) from None


def offline(settings: conf.Settings, plan: revisions.Plan,
            output: TextIO | None) -> results.Run:
    """Write the SQL that undoes ``plan`` (schema-only revisions only:
    kept data lives in the database); nothing connects."""
    import io
    import sys

    from mistral_db_flows import migration
    from mistral_db_flows import urls
    from mistral_db_flows.revert import parent_of
    from mistral_db_flows.revert import replay

    migration.check_url(settings.database_url)
    steps: list[tuple[str, str | None, list[Any]]] = []
    for revision in plan.pending:
        planner = migration.plan_revert(settings.database_url, revision,
                                        parent_of(revision))
        if planner.needs is not None:
            raise exceptions.RevertDataMissing(
                revision, planner.needs, plan.target, offline=True)
        steps.append((revision, parent_of(revision),
                      planner.newest_first()))
    out = output if output is not None else sys.stdout
    # All or nothing: a script cut off half-way must not reach stdout.
    buffer = io.StringIO()
    replay.script(urls.parse(settings.database_url).backend, steps, buffer)
    out.write(buffer.getvalue())
    return results.Run(operation="downgrade",
                       state=results.Outcome.OFFLINE,
                       start_revision=plan.start, end_revision=plan.target,
                       target=plan.target)


def drop_kept(settings: conf.Settings) -> list[str]:
    """Drop every revert table (kept data, an abandoned journal) under
    the database's lock; the kept revisions dropped."""
    from mistral_db_flows import dbapi
    from mistral_db_flows import guarding
    from mistral_db_flows import revert

    from mistral_db_flows import resume

    with guarding.guarded(settings, owner="drop_revert_data") as store:
        fd = store.interrupted()
        if fd is not None:
            info = resume.describe(fd)
            raise exceptions.ResumeRefused(
                "its revert data may be what that run needs",
                operation=info["operation"], target=info["target"],
                step=info["step"])
        with dbapi.sqlalchemy_connection(settings.database_url) as conn:
            return revert.discard(conn)
