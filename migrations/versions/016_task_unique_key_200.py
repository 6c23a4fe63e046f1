"""Widen task_executions_v2.unique_key to 200 characters

Revision ID: 016
Revises: 015
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "016"
down_revision = "015"


def upgrade():
    ddl.alter_column("task_executions_v2", "unique_key",
                     existing_type=sa.String(80), type_=sa.String(200),
                     existing_nullable=True)
