"""Drop the v1 tables; cron triggers get workflow params and their hash

Revision ID: 002
Revises: 001
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "002"
down_revision = "001"

# Upstream left this constraint unnamed, so each backend named it; ours
# carries those names so later revisions can drop it by name.
TRIGGER_PARAMS_UNIQUE = {
    "postgresql":
        "cron_triggers_v2_workflow_input_hash_workflow_name_pattern_key1",
    "mysql": "workflow_input_hash_2",
}


def upgrade():
    for table in ("tasks", "workbooks", "triggers", "workflow_executions"):
        ddl.drop_table(table)

    ddl.add_column("cron_triggers_v2",
                   sa.Column("workflow_params", sa.Text()))
    ddl.add_column("cron_triggers_v2",
                   sa.Column("workflow_params_hash", sa.CHAR(64)))
    ddl.create_unique(
        TRIGGER_PARAMS_UNIQUE, "cron_triggers_v2",
        ["workflow_input_hash", "workflow_name", "pattern", "project_id",
         "workflow_params_hash"])
