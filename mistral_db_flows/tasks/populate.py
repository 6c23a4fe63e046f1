"""populate and populate_actions: Mistral's standard content, upserted.

The whole populate is one transaction (see mistral_db_flows.populate),
so a failed step changed nothing. A failure in a later step (``verify``)
reverts this one: it undoes exactly its own writes from the journal its
result carries (the rows it inserted are deleted, the ones it updated or
deleted are put back), so populate needs no dump of the database.
"""
from __future__ import annotations

from taskflow import task

# The key of the task's result holding its journal: keys starting with
# "_" are a task's own revert data, left out of the reports
# (flows.public_result).
JOURNAL = "_journal"


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

    def execute(self) -> dict:
        from mistral_db_flows import populate

        report = populate.populate(self._database_url,
                                   workflows=self._workflows,
                                   remove_missing=self._remove_missing)
        result = report.to_dict()
        result[JOURNAL] = report.journal
        return result

    def revert(self, result, *args, **kwargs) -> None:
        if not self._undo_on_failure or not isinstance(result, dict):
            return None  # failed itself (one transaction: no change)
        journal = result.get(JOURNAL)
        if journal:
            from mistral_db_flows import populate

            populate.undo(self._database_url, journal)
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
