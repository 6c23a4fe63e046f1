"""Make environments_v2.variables LONGTEXT on MySQL

Revision ID: 021
Revises: 020
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "021"
down_revision = "020"


def upgrade():
    # TEXT is unbounded elsewhere; only MySQL's 64 KiB TEXT is too small.
    if ddl.dialect() != "mysql":
        return
    ddl.alter_column("environments_v2", "variables",
                     existing_type=sa.Text(), type_=ddl.long_text(),
                     existing_nullable=True)
