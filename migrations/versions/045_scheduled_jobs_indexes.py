"""Index scheduled jobs by due time and by key

Revision ID: 045
Revises: 044
"""
from mistral_db_flows import ddl

revision = "045"
down_revision = "044"


def upgrade():
    ddl.create_index("scheduled_jobs_v2_execute_at_captured_at",
                     "scheduled_jobs_v2", ["execute_at", "captured_at"])
    ddl.create_index("scheduled_jobs_v2_key", "scheduled_jobs_v2", ["key"])
