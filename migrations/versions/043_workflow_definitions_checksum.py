"""Add checksum to workflow definitions

Revision ID: 043
Revises: 042
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "043"
down_revision = "042"


def upgrade():
    ddl.add_column("workflow_definitions_v2",
                   sa.Column("checksum", sa.String(32)))
