"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""
import sqlalchemy as sa

from mistral_db_flows import ddl
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade():
    # Use mistral_db_flows.ddl so that the revision can be re-run after
    # a crash half-way (see docs/migrations.md).
    ${upgrades if upgrades else "pass"}
