"""populate and populate_actions: Mistral's standard content, upserted.

The whole populate is one transaction (see mistral_db_flows.populate),
so a failed step changed nothing and its revert has nothing to undo; a
failure in a later step is undone by the backup's revert.
"""
from __future__ import annotations

from taskflow import task


class Populate(task.Task):
    """Upsert the standard actions (and, for populate, workflows)."""

    def __init__(self, name: str, database_url: str,
                 workflows: bool) -> None:
        super().__init__(name=name)
        self._database_url = database_url
        self._workflows = workflows

    def execute(self) -> dict:
        from mistral_db_flows import populate

        report = populate.populate(self._database_url,
                                   workflows=self._workflows)
        return report.to_dict()


def factory(ctx) -> list[task.Task]:
    return [Populate("populate", ctx.database_url, workflows=True)]


def actions_factory(ctx) -> list[task.Task]:
    return [Populate("populate_actions", ctx.database_url, workflows=False)]
