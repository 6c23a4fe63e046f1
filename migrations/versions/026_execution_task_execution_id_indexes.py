"""Index action and workflow executions by task_execution_id

Revision ID: 026
Revises: 025
"""
from mistral_db_flows import ddl

revision = "026"
down_revision = "025"


def upgrade():
    for table in ("action_executions_v2", "workflow_executions_v2"):
        ddl.create_index("%s_task_execution_id" % table, table,
                         ["task_execution_id"])
        # MySQL made an index named after the column for the foreign key
        # (001). The new index now serves the key; upstream's schema has
        # no second one, and MariaDB does not drop it by itself.
        if ddl.dialect() == "mysql":
            ddl.drop_index("task_execution_id", table)
