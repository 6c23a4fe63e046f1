"""Replace delayed_calls_v2.unique_key by key, index execution_time

Revision ID: 019
Revises: 018
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "019"
down_revision = "018"


def upgrade():
    # The (unique_key, processing) constraint goes first: MariaDB
    # refuses to drop a column that a multi-column unique key uses.
    ddl.drop_unique(
        {"postgresql": "delayed_calls_v2_unique_key_processing_key",
         "mysql": "unique_key"},
        "delayed_calls_v2")
    # Upstream drops the old column and adds a new, empty one (old rows
    # get key NULL); we do the same so both tools leave the same data.
    ddl.drop_column("delayed_calls_v2", "unique_key")
    ddl.add_column("delayed_calls_v2", sa.Column("key", sa.String(250)))
    ddl.create_index("delayed_calls_v2_execution_time", "delayed_calls_v2",
                     ["execution_time"])
