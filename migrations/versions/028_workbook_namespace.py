"""Add workbooks_v2.namespace

Revision ID: 028
Revises: 027
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "028"
down_revision = "027"


def upgrade():
    ddl.add_column("workbooks_v2", sa.Column("namespace", sa.String(255)))
    # As in 022: PostgreSQL (and SQLite) keep (name, project_id) unique
    # beside the new constraint; MySQL replaces "name" in place.
    if ddl.dialect() == "mysql":
        ddl.drop_unique("name", "workbooks_v2",
                        columns=["name", "project_id"])
    ddl.create_unique(
        {"postgresql": "workbooks_v2_name_namespace_project_id_key",
         "mysql": "name"},
        "workbooks_v2", ["name", "namespace", "project_id"])
