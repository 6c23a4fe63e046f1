"""Add event_triggers_v2: workflows started by notification events

Revision ID: 012
Revises: 011
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "012"
down_revision = "011"


def upgrade():
    ddl.create_table(
        "event_triggers_v2",
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("project_id", sa.String(80)),
        sa.Column("scope", sa.String(80)),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("workflow_id", sa.String(36), nullable=False),
        sa.Column("exchange", sa.String(80), nullable=False),
        sa.Column("topic", sa.String(80), nullable=False),
        sa.Column("event", sa.String(80), nullable=False),
        sa.Column("workflow_params", sa.Text()),
        sa.Column("workflow_input", sa.Text()),
        sa.Column("trust_id", sa.String(80)),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "exchange", "topic", "event", "workflow_id", "project_id",
            name=ddl.name({
                "postgresql": "event_triggers_v2_exchange_topic_event_"
                              "workflow_id_project__key",
                "mysql": "exchange"})),
        # Unnamed so that each backend names it as upstream's did.
        sa.ForeignKeyConstraint(["workflow_id"],
                                ["workflow_definitions_v2.id"]),
    )
    ddl.create_index("event_triggers_v2_project_id_workflow_id",
                     "event_triggers_v2", ["project_id", "workflow_id"])
