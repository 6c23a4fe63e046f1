"""Executions' state_info becomes TEXT

Revision ID: 008
Revises: 007
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "008"
down_revision = "007"


def upgrade():
    ddl.alter_column("executions_v2", "state_info",
                     existing_type=sa.String(1024), type_=sa.Text(),
                     existing_nullable=True)
