"""Delayed calls and task executions get a unique_key

It lets concurrent engines claim work without table locks.

Revision ID: 015
Revises: 014
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "015"
down_revision = "014"


def upgrade():
    ddl.add_column("delayed_calls_v2",
                   sa.Column("unique_key", sa.String(80)))
    ddl.create_unique(
        {"postgresql": "delayed_calls_v2_unique_key_processing_key",
         "mysql": "unique_key"},
        "delayed_calls_v2", ["unique_key", "processing"])
    ddl.add_column("task_executions_v2",
                   sa.Column("unique_key", sa.String(80)))
    ddl.create_unique(
        {"postgresql": "task_executions_v2_unique_key_key",
         "mysql": "unique_key"},
        "task_executions_v2", ["unique_key"])
