"""Create the scheduled_jobs_v2 table

Revision ID: 034
Revises: 033
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "034"
down_revision = "033"


def upgrade():
    # Re-runnable without looking for the table by hand: create_table
    # skips a table that already has this shape (and works offline).
    ddl.create_table(
        "scheduled_jobs_v2",
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("run_after", sa.Integer()),
        sa.Column("target_factory_func_name", sa.String(200)),
        sa.Column("func_name", sa.String(80)),
        sa.Column("func_args", sa.Text()),
        sa.Column("func_arg_serializers", sa.Text()),
        sa.Column("auth_ctx", sa.Text()),
        sa.Column("execute_at", sa.DateTime(), nullable=False),
        sa.Column("captured_at", sa.DateTime()),
        sa.Column("key", sa.String(250)),
        sa.PrimaryKeyConstraint("id"),
    )
