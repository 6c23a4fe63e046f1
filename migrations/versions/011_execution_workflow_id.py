"""Executions record the id of their workflow definition

Revision ID: 011
Revises: 010
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "011"
down_revision = "010"


def upgrade():
    ddl.add_column("executions_v2",
                   sa.Column("workflow_id", sa.String(80)))
