"""Executions get a description

Revision ID: 004
Revises: 003
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "004"
down_revision = "003"


def upgrade():
    ddl.add_column("executions_v2",
                   sa.Column("description", sa.String(255)))
