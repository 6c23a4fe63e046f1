"""Make workflow execution descriptions TEXT

Revision ID: 041
Revises: 040
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "041"
down_revision = "040"


def upgrade():
    ddl.alter_column("workflow_executions_v2", "description",
                     existing_type=sa.String(255), type_=sa.Text(),
                     existing_nullable=True)
