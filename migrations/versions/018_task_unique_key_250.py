"""Widen task_executions_v2.unique_key to 250 characters

Revision ID: 018
Revises: 017
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "018"
down_revision = "017"


def upgrade():
    ddl.alter_column("task_executions_v2", "unique_key",
                     existing_type=sa.String(200), type_=sa.String(250),
                     existing_nullable=True)
