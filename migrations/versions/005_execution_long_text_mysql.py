"""Executions' JSON columns become LONGTEXT on MySQL

Revision ID: 005
Revises: 004
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "005"
down_revision = "004"

COLUMNS = ("input", "params", "context", "action_spec", "published",
           "runtime_context")


def upgrade():
    # Only MySQL's TEXT is too small (64 KiB); elsewhere TEXT is already
    # unbounded, so nothing is emitted there (not even offline).
    if ddl.dialect() != "mysql":
        return
    for column in COLUMNS:
        ddl.alter_column("executions_v2", column, existing_type=sa.Text(),
                         type_=ddl.long_text(), existing_nullable=True)
