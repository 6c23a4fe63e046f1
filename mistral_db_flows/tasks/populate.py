"""populate and populate_actions: the slots for Mistral's system content.

The content (system workflows, actions) comes with the populate issue;
until then the tasks run, change nothing and say so in their result.
"""
from __future__ import annotations

from taskflow import task


class Populate(task.Task):
    """Placeholder: reports that nothing was populated yet."""

    def __init__(self, name: str, database_url: str) -> None:
        super().__init__(name=name)
        self._database_url = database_url

    def execute(self) -> dict:
        return {"changed": False,
                "reason": "no content to populate in this release"}


def factory(ctx) -> list[task.Task]:
    return [Populate("populate", ctx.database_url)]


def actions_factory(ctx) -> list[task.Task]:
    return [Populate("populate_actions", ctx.database_url)]
