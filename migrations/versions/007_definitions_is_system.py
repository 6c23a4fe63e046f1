"""Workbooks and workflow definitions get an is_system flag

Revision ID: 007
Revises: 006
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "007"
down_revision = "006"


def upgrade():
    for table in ("workbooks_v2", "workflow_definitions_v2"):
        ddl.add_column(table, sa.Column("is_system", sa.Boolean()))
