"""Delayed calls get a NOT NULL processing flag

Revision ID: 006
Revises: 005
"""
import sqlalchemy as sa
from alembic import op

from mistral_db_flows import ddl

revision = "006"
down_revision = "005"


def _has_default(table: str, column: str) -> bool:
    if ddl.offline():
        return True
    for col in sa.inspect(op.get_bind()).get_columns(table):
        if col["name"] == column:
            return col.get("default") is not None
    return False


def upgrade():
    # Existing rows need a value for the NOT NULL column: adding it with
    # a server default fills them with false in the same statement on
    # every backend. The default is dropped next, because the target
    # schema has none (the application always sets the flag).
    ddl.add_column("delayed_calls_v2", sa.Column(
        "processing", sa.Boolean(), nullable=False,
        server_default=sa.false()))
    if not _has_default("delayed_calls_v2", "processing"):
        return
    # SQLite cannot drop a default in place: batch mode copies the table.
    with op.batch_alter_table(
            "delayed_calls_v2",
            recreate="always" if ddl.dialect() == "sqlite" else "never"
    ) as batch:
        batch.alter_column("processing", existing_type=sa.Boolean(),
                           existing_nullable=False, server_default=None)
