"""stamp: set alembic_version to the target, leaving the schema alone."""
from __future__ import annotations

from taskflow import task

from mistral_db_flows import migration
from mistral_db_flows import version_table


class Stamp(task.Task):
    """Write ``revision`` (None: empty) into alembic_version."""

    def __init__(self, database_url: str, revision: str | None,
                 undo_on_failure: bool = True) -> None:
        super().__init__(name="stamp")
        self._database_url = database_url
        self.revision = revision
        self._undo_on_failure = undo_on_failure

    def execute(self) -> dict:
        before = version_table.read_version(self._database_url)
        migration.stamp(self._database_url, self.revision or "base")
        return {"revision": self.revision, "from": before[0] if before
                else None}

    def revert(self, result, *args, **kwargs) -> None:
        # Put the stamp back as it was: stamp takes no dump.
        if isinstance(result, dict) and self._undo_on_failure:
            migration.stamp(self._database_url, result.get("from") or "base")
        return None


def factory(ctx) -> list[task.Task]:
    return [Stamp(ctx.database_url, ctx.target,
                  undo_on_failure=getattr(ctx.settings, "on_failure",
                                          "revert") == "revert")]
