"""stamp: set alembic_version to the target, leaving the schema alone.

Its revert writes the previous revision back; when the database had no
``alembic_version`` table before (Alembic creates it to stamp), the
revert drops the table again, leaving the database as it was.
"""
from __future__ import annotations

from taskflow import task

from mistral_db_flows import dbapi
from mistral_db_flows import migration
from mistral_db_flows import version_table

# The result's key saying the stamp created alembic_version ("_": the
# task's own revert data, left out of the reports).
CREATED = "_created_table"


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
        created = not before and not self._has_version_table()
        migration.stamp(self._database_url, self.revision or "base")
        return {"revision": self.revision, "from": before[0] if before
                else None, CREATED: created}

    def revert(self, result=None, *args, **kwargs) -> dict | None:
        """What was undone (None: nothing, e.g. with on_failure=stop)."""
        if not (self._undo_on_failure and isinstance(result, dict)):
            return None
        if result.get(CREATED):
            self._drop_version_table()
            return {"stamped": None}
        migration.stamp(self._database_url, result["from"] or "base")
        return {"stamped": result["from"]}

    def _has_version_table(self) -> bool:
        import sqlalchemy as sa

        with dbapi.sqlalchemy_connection(self._database_url) as conn:
            return sa.inspect(conn).has_table("alembic_version")

    def _drop_version_table(self) -> None:
        import sqlalchemy as sa

        with dbapi.sqlalchemy_connection(self._database_url) as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            conn.commit()


def factory(ctx) -> list[task.Task]:
    return [Stamp(ctx.database_url, ctx.target,
                  undo_on_failure=getattr(ctx.settings, "on_failure",
                                          "revert") == "revert")]
