"""Widen task unique_key and named_locks.name to 255 characters

Revision ID: 025
Revises: 024
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "025"
down_revision = "024"


def upgrade():
    ddl.alter_column("task_executions_v2", "unique_key",
                     existing_type=sa.String(250), type_=sa.String(255),
                     existing_nullable=True)
    ddl.alter_column("named_locks", "name",
                     existing_type=sa.String(250), type_=sa.String(255),
                     existing_nullable=True)
