"""Delete delayed calls that have no key

Revision ID: 038
Revises: 037
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "038"
down_revision = "037"


def upgrade():
    # "key" is reserved on MySQL: build the statement so that each
    # dialect quotes the column its own way.
    table = sa.table("delayed_calls_v2", sa.column("key"))
    # Its revert inserts the deleted rows again: only they are kept.
    ddl.save_rows("delayed_calls_v2", ["id"], None, table.c.key.is_(None))
    ddl.execute(sa.delete(table).where(table.c.key.is_(None)))
