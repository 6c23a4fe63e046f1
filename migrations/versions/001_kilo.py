"""Kilo release

Revision ID: 001
Revises: None
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "001"
down_revision = None


def _common(with_scope: bool = True) -> list:
    cols = [sa.Column("created_at", sa.DateTime()),
            sa.Column("updated_at", sa.DateTime())]
    if with_scope:
        cols += [sa.Column("scope", sa.String(80)),
                 sa.Column("project_id", sa.String(80))]
    return cols


def _unique(*columns: str, pg: str, mysql: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(
        *columns, name=ddl.name({"postgresql": pg, "mysql": mysql}))


def upgrade():
    ddl.create_table(
        "workbooks_v2",
        *_common(),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(80)),
        sa.Column("definition", sa.Text()),
        sa.Column("spec", sa.Text()),
        sa.Column("tags", sa.Text()),
        sa.PrimaryKeyConstraint("id"),
        _unique("name", "project_id",
                pg="workbooks_v2_name_project_id_key", mysql="name"),
    )
    ddl.create_table(
        "tasks",
        *_common(with_scope=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(80)),
        sa.Column("requires", sa.Text()),
        sa.Column("workbook_name", sa.String(80)),
        sa.Column("execution_id", sa.String(36)),
        sa.Column("description", sa.String(200)),
        sa.Column("task_spec", sa.Text()),
        sa.Column("action_spec", sa.Text()),
        sa.Column("state", sa.String(20)),
        sa.Column("tags", sa.Text()),
        sa.Column("in_context", sa.Text()),
        sa.Column("parameters", sa.Text()),
        sa.Column("output", sa.Text()),
        sa.Column("task_runtime_context", sa.Text()),
        sa.PrimaryKeyConstraint("id"),
    )
    ddl.create_table(
        "executions_v2",
        *_common(),
        sa.Column("type", sa.String(50)),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(80)),
        sa.Column("workflow_name", sa.String(80)),
        sa.Column("spec", sa.Text()),
        sa.Column("state", sa.String(20)),
        sa.Column("state_info", sa.String(1024)),
        sa.Column("tags", sa.Text()),
        sa.Column("accepted", sa.Boolean()),
        sa.Column("input", sa.Text()),
        sa.Column("output", ddl.long_text()),
        sa.Column("params", sa.Text()),
        sa.Column("context", sa.Text()),
        sa.Column("action_spec", sa.Text()),
        sa.Column("processed", sa.Boolean()),
        sa.Column("in_context", ddl.long_text()),
        sa.Column("published", sa.Text()),
        sa.Column("runtime_context", sa.Text()),
        sa.Column("task_execution_id", sa.String(36)),
        sa.Column("workflow_execution_id", sa.String(36)),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["task_execution_id"], ["executions_v2.id"]),
        sa.ForeignKeyConstraint(["workflow_execution_id"],
                                ["executions_v2.id"]),
    )
    ddl.create_table(
        "workflow_definitions_v2",
        *_common(),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(80)),
        sa.Column("definition", sa.Text()),
        sa.Column("spec", sa.Text()),
        sa.Column("tags", sa.Text()),
        sa.PrimaryKeyConstraint("id"),
        _unique("name", "project_id",
                pg="workflow_definitions_v2_name_project_id_key",
                mysql="name"),
    )
    ddl.create_table(
        "workbooks",
        *_common(with_scope=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("definition", sa.Text()),
        sa.Column("description", sa.String(200)),
        sa.Column("tags", sa.Text()),
        sa.Column("scope", sa.String(80)),
        sa.Column("project_id", sa.String(80)),
        sa.Column("trust_id", sa.String(80)),
        sa.PrimaryKeyConstraint("id", "name"),
        _unique("name", pg="workbooks_name_key", mysql="name"),
    )
    ddl.create_table(
        "environments_v2",
        *_common(),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("description", sa.Text()),
        sa.Column("variables", sa.Text()),
        sa.PrimaryKeyConstraint("id"),
        _unique("name", "project_id",
                pg="environments_v2_name_project_id_key", mysql="name"),
    )
    ddl.create_table(
        "triggers",
        *_common(with_scope=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("pattern", sa.String(20), nullable=False),
        sa.Column("next_execution_time", sa.DateTime(), nullable=False),
        sa.Column("workbook_name", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        _unique("name", pg="triggers_name_key", mysql="name"),
    )
    ddl.create_table(
        "delayed_calls_v2",
        *_common(with_scope=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("factory_method_path", sa.String(200)),
        sa.Column("target_method_name", sa.String(80), nullable=False),
        sa.Column("method_arguments", sa.Text()),
        sa.Column("serializers", sa.Text()),
        sa.Column("auth_context", sa.Text()),
        sa.Column("execution_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    ddl.create_table(
        "workflow_executions",
        *_common(with_scope=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("workbook_name", sa.String(80)),
        sa.Column("task", sa.String(80)),
        sa.Column("state", sa.String(20)),
        sa.Column("context", sa.Text()),
        sa.PrimaryKeyConstraint("id"),
    )
    ddl.create_table(
        "cron_triggers_v2",
        *_common(),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("pattern", sa.String(100)),
        sa.Column("next_execution_time", sa.DateTime(), nullable=False),
        sa.Column("workflow_name", sa.String(80)),
        sa.Column("remaining_executions", sa.Integer()),
        sa.Column("workflow_id", sa.String(36)),
        sa.Column("workflow_input", sa.Text()),
        sa.Column("workflow_input_hash", sa.CHAR(64)),
        sa.Column("trust_id", sa.String(80)),
        sa.PrimaryKeyConstraint("id"),
        _unique("name", "project_id",
                pg="cron_triggers_v2_name_project_id_key", mysql="name"),
        _unique("workflow_input_hash", "workflow_name", "pattern",
                "project_id",
                pg="cron_triggers_v2_workflow_input_hash_workflow_name_"
                   "pattern__key",
                mysql="workflow_input_hash"),
        sa.ForeignKeyConstraint(["workflow_id"],
                                ["workflow_definitions_v2.id"]),
    )
    ddl.create_table(
        "action_definitions_v2",
        *_common(),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(80)),
        sa.Column("definition", sa.Text()),
        sa.Column("spec", sa.Text()),
        sa.Column("tags", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("input", sa.Text()),
        sa.Column("action_class", sa.String(200)),
        sa.Column("attributes", sa.Text()),
        sa.Column("is_system", sa.Boolean()),
        sa.PrimaryKeyConstraint("id"),
        _unique("name", "project_id",
                pg="action_definitions_v2_name_project_id_key",
                mysql="name"),
    )
