"""Cron triggers get a first execution time, part of their unique key

Revision ID: 003
Revises: 002
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "003"
down_revision = "002"

# Backend-chosen names of upstream's unnamed constraint (see 002).
TRIGGER_TIMES_UNIQUE = {
    "postgresql":
        "cron_triggers_v2_workflow_input_hash_workflow_name_pattern_key2",
    "mysql": "workflow_input_hash_3",
}


def upgrade():
    ddl.add_column("cron_triggers_v2",
                   sa.Column("first_execution_time", sa.DateTime()))
    ddl.create_unique(
        TRIGGER_TIMES_UNIQUE, "cron_triggers_v2",
        ["workflow_input_hash", "workflow_name", "pattern", "project_id",
         "workflow_params_hash", "remaining_executions",
         "first_execution_time"])
