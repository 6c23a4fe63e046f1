"""Put workbooks without a namespace in the default namespace ''

Revision ID: 029
Revises: 028
"""
from mistral_db_flows import ddl

revision = "029"
down_revision = "028"


def upgrade():
    # Its revert writes back NULL where this sets '' (the column is
    # 028's): only those rows' ids are kept.
    ddl.save_rows("workbooks_v2", ["id"], ["namespace"],
                  "namespace IS NULL")
    ddl.execute("UPDATE workbooks_v2 SET namespace = '' "
                "WHERE namespace IS NULL")
