"""Add workbook_name to action and workflow definitions

Revision ID: 039
Revises: 038
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "039"
down_revision = "038"


def upgrade():
    ddl.add_column("action_definitions_v2",
                   sa.Column("workbook_name", sa.String(255)))
    ddl.add_column("workflow_definitions_v2",
                   sa.Column("workbook_name", sa.String(255)))
