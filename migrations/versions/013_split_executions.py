"""Split executions into workflow, task and action tables; longer names

The new tables start empty: executions_v2 stays as it is (as upstream
left it). Definition names and cron trigger workflow names grow to 255
characters; on MySQL definitions and specs become MEDIUMTEXT.

Revision ID: 013
Revises: 012
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "013"
down_revision = "012"

INDEXED = ["project_id", "scope", "state", "updated_at"]


def _common() -> list:
    """The leading columns the three execution tables share."""
    return [
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("scope", sa.String(80)),
        sa.Column("project_id", sa.String(80)),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("description", sa.String(255)),
        sa.Column("workflow_name", sa.String(255)),
        sa.Column("workflow_id", sa.String(80)),
        sa.Column("spec", ddl.medium_text()),
        sa.Column("state", sa.String(20)),
        sa.Column("state_info", sa.Text()),
        sa.Column("tags", sa.Text()),
        sa.Column("runtime_context", ddl.long_text()),
    ]


def _parent_key(column: str, table: str) -> sa.ForeignKeyConstraint:
    # Unnamed: each backend names it as it named upstream's.
    return sa.ForeignKeyConstraint([column], ["%s.id" % table],
                                   ondelete="CASCADE")


def _create_execution_tables() -> None:
    # Workflow and task executions point at each other, so the workflow
    # side's key is added once both tables exist.
    ddl.create_table(
        "workflow_executions_v2",
        *_common(),
        sa.Column("accepted", sa.Boolean()),
        sa.Column("input", ddl.long_text()),
        sa.Column("output", ddl.long_text()),
        sa.Column("params", ddl.long_text()),
        sa.Column("context", ddl.long_text()),
        sa.Column("task_execution_id", sa.String(36)),
        sa.PrimaryKeyConstraint("id"),
    )
    ddl.create_table(
        "task_executions_v2",
        *_common(),
        sa.Column("action_spec", ddl.long_text()),
        sa.Column("processed", sa.Boolean()),
        sa.Column("in_context", ddl.long_text()),
        sa.Column("published", ddl.long_text()),
        sa.Column("workflow_execution_id", sa.String(36)),
        sa.PrimaryKeyConstraint("id"),
        _parent_key("workflow_execution_id", "workflow_executions_v2"),
    )
    ddl.create_table(
        "action_executions_v2",
        *_common(),
        sa.Column("accepted", sa.Boolean()),
        sa.Column("input", ddl.long_text()),
        sa.Column("output", ddl.long_text()),
        sa.Column("task_execution_id", sa.String(36)),
        sa.PrimaryKeyConstraint("id"),
        _parent_key("task_execution_id", "task_executions_v2"),
    )
    indexes = {
        "workflow_executions_v2": INDEXED,
        # On MySQL this index also takes over from the implicit one of
        # the foreign key, as in upstream's schema.
        "task_executions_v2": INDEXED + ["workflow_execution_id"],
        "action_executions_v2": INDEXED,
    }
    for table, columns in indexes.items():
        for column in columns:
            ddl.create_index("%s_%s" % (table, column), table, [column])
    # Unnamed on MySQL: only then does MySQL name the implicit index
    # after the column (task_execution_id), as upstream's schema has it.
    # PostgreSQL would pick this very name; SQLite's batch mode needs one.
    ddl.create_foreign_key(
        ddl.name({"postgresql":
                  "workflow_executions_v2_task_execution_id_fkey",
                  "mysql": None}),
        "workflow_executions_v2", ["task_execution_id"],
        "task_executions_v2", ["id"], ondelete="CASCADE")


def _widen_names() -> None:
    for table, column in (("action_definitions_v2", "name"),
                          ("cron_triggers_v2", "workflow_name"),
                          ("workbooks_v2", "name"),
                          ("workflow_definitions_v2", "name")):
        ddl.alter_column(table, column, existing_type=sa.String(80),
                         type_=sa.String(255), existing_nullable=True)
    # Elsewhere TEXT has no 64 KiB limit: nothing to emit.
    if ddl.dialect() != "mysql":
        return
    for table in ("action_definitions_v2", "workbooks_v2",
                  "workflow_definitions_v2"):
        for column in ("definition", "spec"):
            ddl.alter_column(table, column, existing_type=sa.Text(),
                             type_=ddl.medium_text(),
                             existing_nullable=True)


def upgrade():
    _create_execution_tables()
    _widen_names()
