"""Add next_tasks to task executions

Revision ID: 033
Revises: 032
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "033"
down_revision = "032"


def upgrade():
    # Plain TEXT on every backend (not MySQL's LONGTEXT).
    ddl.add_column("task_executions_v2",
                   sa.Column("next_tasks", sa.Text()))
