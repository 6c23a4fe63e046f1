"""Add namespaces to workflow definitions and executions

Revision ID: 022
Revises: 021
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "022"
down_revision = "021"

_NAME_UNIQUE = {"postgresql": "workflow_definitions_v2_name_project_id_key",
                "mysql": "name"}
_NAMESPACE_UNIQUE = {
    "postgresql": "workflow_definitions_v2_name_namespace_project_id_key",
    "mysql": "name"}


def upgrade():
    ddl.add_column("workflow_definitions_v2",
                   sa.Column("namespace", sa.String(255)))
    for table in ("workflow_executions_v2", "task_executions_v2",
                  "action_executions_v2"):
        ddl.add_column(table, sa.Column("workflow_namespace", sa.String(255)))
    # Upstream's schema keeps (name, project_id) unique beside the new
    # constraint on PostgreSQL (and so on SQLite, which follows it). On
    # MySQL the new constraint reuses the name "name": the old one must
    # go first, and only while it still has the old columns.
    if ddl.dialect() == "mysql":
        ddl.drop_unique(_NAME_UNIQUE, "workflow_definitions_v2",
                        columns=["name", "project_id"])
    ddl.create_unique(_NAMESPACE_UNIQUE, "workflow_definitions_v2",
                      ["name", "namespace", "project_id"])
    # Existing definitions and executions live in the default namespace
    # ''. Upstream moves an action execution there only when its
    # workflow_name is set and not empty (a run of upstream's 022 on
    # PostgreSQL and MariaDB: tests/reference_data/upstream_022_data.json);
    # the others keep NULL. LENGTH, not <> '', because MySQL's PAD SPACE
    # collations find ' ' equal to '' while upstream counts it as a name.
    # The columns set here are this revision's own: saving them costs
    # nothing (the revert drops them), but says what is rewritten.
    ddl.save_rows("workflow_definitions_v2", ["id"], ["namespace"],
                  "namespace IS NULL")
    ddl.execute("UPDATE workflow_definitions_v2 SET namespace = '' "
                "WHERE namespace IS NULL")
    for table in ("workflow_executions_v2", "task_executions_v2"):
        ddl.save_rows(table, ["id"], ["workflow_namespace"],
                      "workflow_namespace IS NULL")
        ddl.execute("UPDATE %s SET workflow_namespace = '' "
                    "WHERE workflow_namespace IS NULL" % table)
    ddl.save_rows("action_executions_v2", ["id"], ["workflow_namespace"],
                  "workflow_namespace IS NULL AND LENGTH(workflow_name) > 0")
    ddl.execute("UPDATE action_executions_v2 SET workflow_namespace = '' "
                "WHERE workflow_namespace IS NULL "
                "AND LENGTH(workflow_name) > 0")
