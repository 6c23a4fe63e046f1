"""Add last_heartbeat and is_sync to action executions

Revision ID: 027
Revises: 026
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "027"
down_revision = "026"


def upgrade():
    ddl.add_column("action_executions_v2",
                   sa.Column("last_heartbeat", sa.DateTime()))
    ddl.add_column("action_executions_v2", sa.Column("is_sync", sa.Boolean()))
