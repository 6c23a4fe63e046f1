"""The backup slot: the first task of every flow that changes data.

For now it takes no backup and provides ``backup = None``; the safety
release makes it take one and restore it on revert. Flows and results
already carry the value, so nothing else changes then.
"""
from __future__ import annotations

from taskflow import task


class Backup(task.Task):
    """Provides ``backup``: where the backup is (None: none taken)."""

    def __init__(self, database_url: str) -> None:
        super().__init__(name="backup", provides="backup")
        self._database_url = database_url

    def execute(self) -> None:
        return None

    def revert(self, *args, **kwargs) -> None:
        # Nothing was taken, so nothing to restore.
        return None


def factory(ctx) -> list[task.Task]:
    return [Backup(ctx.database_url)]
