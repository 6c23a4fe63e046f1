"""Create code_sources and dynamic_action_definitions

Revision ID: 040
Revises: 039
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "040"
down_revision = "039"


def _unique(table: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(
        "name", "namespace", "project_id",
        name=ddl.name({"postgresql": "%s_name_namespace_project_id_key"
                       % table, "mysql": "name"}))


def upgrade():
    ddl.create_table(
        "code_sources",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(80)),
        sa.Column("namespace", sa.String(255)),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tags", sa.Text()),
        sa.Column("scope", sa.String(80)),
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id"),
        _unique("code_sources"),
    )
    ddl.create_index("code_sources_project_id", "code_sources",
                     ["project_id"])
    ddl.create_index("code_sources_scope", "code_sources", ["scope"])

    # The foreign key stays unnamed so that each backend names it (and
    # MySQL its index) the way upstream's schema shows.
    ddl.create_table(
        "dynamic_action_definitions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("class_name", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(80)),
        sa.Column("project_id", sa.String(80)),
        sa.Column("code_source_id", sa.String(36), nullable=False),
        sa.Column("code_source_name", sa.String(255), nullable=False),
        sa.Column("namespace", sa.String(255)),
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["code_source_id"], ["code_sources.id"],
                                ondelete="CASCADE"),
        _unique("dynamic_action_definitions"),
    )
    ddl.create_index("dynamic_action_definitions_project_id",
                     "dynamic_action_definitions", ["project_id"])
    ddl.create_index("dynamic_action_definitions_scope",
                     "dynamic_action_definitions", ["scope"])
