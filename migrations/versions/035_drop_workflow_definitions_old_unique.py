"""Drop the old (name, project_id) unique key of workflow definitions

Revision ID: 035
Revises: 034
"""
from mistral_db_flows import ddl

revision = "035"
down_revision = "034"


def upgrade():
    # On MySQL the old key was named "name" and an earlier revision has
    # already replaced it by the (name, namespace, project_id) key of the
    # same name: dropping "name" there would remove the key we keep.
    # PostgreSQL (and SQLite, which follows its names) still carries the
    # old key under its own name.
    if ddl.dialect() == "mysql":
        return
    ddl.drop_unique("workflow_definitions_v2_name_project_id_key",
                    "workflow_definitions_v2")
