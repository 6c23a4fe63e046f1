"""Add workflow_executions_v2.root_execution_id

Revision ID: 023
Revises: 022
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "023"
down_revision = "022"


def upgrade():
    ddl.add_column("workflow_executions_v2",
                   sa.Column("root_execution_id", sa.String(80)))
