"""Add has_next_tasks and error_handled to task executions

Revision ID: 032
Revises: 031
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "032"
down_revision = "031"


def upgrade():
    ddl.add_column("task_executions_v2",
                   sa.Column("has_next_tasks", sa.Boolean()))
    ddl.add_column("task_executions_v2",
                   sa.Column("error_handled", sa.Boolean()))
