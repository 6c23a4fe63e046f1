"""Align cron trigger uniqueness and two nullable columns with the models

On PostgreSQL the seven-column cron trigger unique constraint is added a
second time under its original name; on MySQL the three older ones are
replaced by one. event_triggers_v2.workflow_id and
resource_members_v2.project_id become nullable.

Revision ID: 014
Revises: 013
"""
import sqlalchemy as sa
from alembic import op

from mistral_db_flows import ddl

revision = "014"
down_revision = "013"

TABLE = "cron_triggers_v2"
KEY = ["workflow_input_hash", "workflow_name", "pattern", "project_id",
       "workflow_params_hash", "remaining_executions",
       "first_execution_time"]
FIRST_KEY = KEY[:4]


def _unique_columns(constraint: str) -> list[str] | None:
    """Columns of a unique key, None if absent or offline."""
    if ddl.offline():
        return None
    insp = sa.inspect(op.get_bind())
    for index in insp.get_indexes(TABLE):
        if index["unique"] and index["name"] == constraint:
            return list(index["column_names"])
    return None


def _replace_mysql_uniques() -> None:
    # MySQL's name for the 001 key is reused for the new one, so the old
    # key is dropped only while it still has its old four columns: a
    # re-run must not drop the new one.
    if _unique_columns("workflow_input_hash") in (None, FIRST_KEY):
        ddl.drop_unique("workflow_input_hash", TABLE)
    for constraint in ("workflow_input_hash_2", "workflow_input_hash_3"):
        ddl.drop_unique(constraint, TABLE)
    ddl.create_unique("workflow_input_hash", TABLE, KEY)


def upgrade():
    if ddl.dialect() == "mysql":
        _replace_mysql_uniques()
    else:
        # Upstream quirk kept on purpose (parity with its schema): the
        # same columns as 003's ..._key2, under the name 009 dropped.
        ddl.create_unique(
            "cron_triggers_v2_workflow_input_hash_workflow_name_pattern__key",
            TABLE, KEY)
    ddl.alter_column("event_triggers_v2", "workflow_id",
                     existing_type=sa.String(36), nullable=True)
    ddl.alter_column("resource_members_v2", "project_id",
                     existing_type=sa.String(80), nullable=True)
