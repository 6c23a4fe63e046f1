"""Add started_at and finished_at to task executions

Revision ID: 031
Revises: 030
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "031"
down_revision = "030"


def upgrade():
    ddl.add_column("task_executions_v2",
                   sa.Column("started_at", sa.DateTime()))
    ddl.add_column("task_executions_v2",
                   sa.Column("finished_at", sa.DateTime()))
