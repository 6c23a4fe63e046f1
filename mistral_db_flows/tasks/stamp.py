"""stamp: set alembic_version to the target, leaving the schema alone."""
from __future__ import annotations

from taskflow import task

from mistral_db_flows import migration
from mistral_db_flows import version_table


class Stamp(task.Task):
    """Write ``revision`` (None: empty) into alembic_version."""

    def __init__(self, database_url: str, revision: str | None) -> None:
        super().__init__(name="stamp")
        self._database_url = database_url
        self.revision = revision

    def execute(self) -> dict:
        before = version_table.read_version(self._database_url)
        migration.stamp(self._database_url, self.revision or "base")
        return {"revision": self.revision, "from": before[0] if before
                else None}

    def revert(self, *args, **kwargs) -> None:
        # The backup's revert puts the old stamp back.
        return None


def factory(ctx) -> list[task.Task]:
    return [Stamp(ctx.database_url, ctx.target)]
