"""Add the named_locks table

Revision ID: 017
Revises: 016
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "017"
down_revision = "016"


def upgrade():
    ddl.create_table(
        "named_locks",
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(250)),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", name=ddl.name(
            {"postgresql": "named_locks_name_key", "mysql": "name"})),
    )
