"""Drop the old (name, project_id) unique key of workbooks

Revision ID: 036
Revises: 035
"""
from mistral_db_flows import ddl

revision = "036"
down_revision = "035"


def upgrade():
    # As in 035: on MySQL the key named "name" is already the
    # (name, namespace, project_id) one and must stay.
    if ddl.dialect() == "mysql":
        return
    ddl.drop_unique("workbooks_v2_name_project_id_key", "workbooks_v2")
