"""populate and populate_actions: Mistral's standard content, upserted.

The whole populate is one transaction (see mistral_db_flows.populate),
so a failed step changed nothing. A failure in a later step (``verify``)
reverts this one: it undoes exactly its own writes (the rows it inserted
are deleted, the ones it updated or deleted are put back), so populate
needs no dump of the database. What it needs for that is kept in the
database itself, written in populate's own transaction and keyed by the
run (:mod:`mistral_db_flows.populate.journal`): never in the logbook,
and reachable from any host that resumes the run or finishes its
revert.

The definitions come from the run's preflight (``populate_sources``,
read and validated once before the lock); a flow run without it (an
embedder's) reads them itself.
"""
from __future__ import annotations

from typing import Any

from taskflow import task

# The key of a result holding a journal, as runs of earlier builds
# recorded it in the logbook: their revert still finds it there. Keys
# starting with "_" are left out of the reports (flows.public_result).
JOURNAL = "_journal"

# The flow store's name for the preflight's populate.Loaded (the name
# of Populate.execute's and Verify.execute's argument).
SOURCES = "populate_sources"


class Populate(task.Task):
    """Upsert the standard actions (and, for populate, workflows)."""

    def __init__(self, name: str, database_url: str,
                 workflows: bool, remove_missing: bool = False,
                 undo_on_failure: bool = True) -> None:
        super().__init__(name=name)
        self._database_url = database_url
        self._workflows = workflows
        self._remove_missing = remove_missing
        self._undo_on_failure = undo_on_failure

    # Optional arguments (TaskFlow: those with a default): a flow run
    # without the run engine's store still runs.
    def execute(self, run_id: str | None = None,
                populate_sources: Any = None) -> dict:
        from mistral_db_flows import populate

        report = populate.populate(self._database_url,
                                   workflows=self._workflows,
                                   remove_missing=self._remove_missing,
                                   loaded=populate_sources,
                                   journal_run=run_id)
        result = report.to_dict()
        if run_id is None:
            # No run to key a journal in the database by: the result
            # is all there is to undo it from.
            result[JOURNAL] = report.journal
        return result

    # TaskFlow hands revert only the arguments its own signature names.
    def revert(self, result, run_id: str | None = None, *args,
               **kwargs) -> None:
        if not self._undo_on_failure or not isinstance(result, dict):
            return None  # failed itself (one transaction: no change)
        from mistral_db_flows import populate

        populate.undo_run(self._database_url, run_id,
                          fallback=result.get(JOURNAL))
        return None


def _options(ctx) -> dict:
    settings = ctx.settings
    return {"undo_on_failure": getattr(settings, "on_failure",
                                       "revert") == "revert"}


def factory(ctx) -> list[task.Task]:
    return [Populate("populate", ctx.database_url, workflows=True,
                     remove_missing=bool(getattr(
                         ctx.settings, "populate_remove_missing", False)),
                     **_options(ctx))]


def actions_factory(ctx) -> list[task.Task]:
    return [Populate("populate_actions", ctx.database_url, workflows=False,
                     **_options(ctx))]
