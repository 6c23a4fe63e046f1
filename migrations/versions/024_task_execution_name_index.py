"""Index task executions by workflow execution and name

Revision ID: 024
Revises: 023
"""
from mistral_db_flows import ddl

revision = "024"
down_revision = "023"


def upgrade():
    ddl.create_index("task_executions_v2_workflow_execution_id_name",
                     "task_executions_v2", ["workflow_execution_id", "name"])
