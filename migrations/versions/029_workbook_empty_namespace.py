"""Put workbooks without a namespace in the default namespace ''

Revision ID: 029
Revises: 028
"""
from mistral_db_flows import ddl

revision = "029"
down_revision = "028"


def upgrade():
    ddl.execute("UPDATE workbooks_v2 SET namespace = '' "
                "WHERE namespace IS NULL")
