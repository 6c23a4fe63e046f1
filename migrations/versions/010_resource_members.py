"""Add resource_members_v2: resources shared with other projects

Revision ID: 010
Revises: 009
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "010"
down_revision = "009"


def upgrade():
    ddl.create_table(
        "resource_members_v2",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("project_id", sa.String(80), nullable=False),
        sa.Column("member_id", sa.String(80), nullable=False),
        sa.Column("resource_id", sa.String(80), nullable=False),
        sa.Column("resource_type", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "resource_id", "resource_type", "member_id",
            name=ddl.name({
                "postgresql": "resource_members_v2_resource_id_resource_"
                              "type_member_id_key",
                "mysql": "resource_id"})),
    )
