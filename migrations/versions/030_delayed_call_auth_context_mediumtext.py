"""Make delayed_calls_v2.auth_context MEDIUMTEXT on MySQL

Revision ID: 030
Revises: 029
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "030"
down_revision = "029"


def upgrade():
    # Only MySQL's TEXT is limited (64 KiB); elsewhere TEXT stays.
    if ddl.dialect() != "mysql":
        return
    ddl.alter_column("delayed_calls_v2", "auth_context",
                     existing_type=sa.Text(), type_=ddl.medium_text(),
                     existing_nullable=True)
