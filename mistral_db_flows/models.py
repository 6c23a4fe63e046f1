"""Mistral's head schema (revision 045) as Mistral's models define it.

This is the schema upstream Mistral's ORM creates with ``create_all``,
declared as SQLAlchemy Core metadata: Alembic's ``revision
--autogenerate`` takes it as ``target_metadata`` and ``verify`` compares
a live database with it. A database migrated to head differs from it in
a few known ways (upstream's drift); those are listed, one by one, in
:mod:`mistral_db_flows.known_drift`.

Column order follows the models (mixin columns placed as the ORM places
them), so that ``create_all`` reproduces upstream's model schema
exactly. Names are given only where Mistral's models give them (the
indexes): primary keys, unique constraints and foreign keys are left
unnamed so each backend names them itself, as it does for upstream.

Importing this module connects to nothing.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mistral_db_flows import ddl
from mistral_db_flows import schema_dump
from mistral_db_flows import urls

# -- column groups shared by several tables --------------------------------

def _id() -> sa.Column:
    return sa.Column("id", sa.String(36), primary_key=True)


def _scope() -> list[sa.Column]:
    return [sa.Column("scope", sa.String(80)),
            sa.Column("project_id", sa.String(80))]


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", sa.DateTime()),
            sa.Column("updated_at", sa.DateTime())]


def _definition() -> list[sa.Column]:
    """Workbooks, workflow and action definitions."""
    return [
        _id(),
        sa.Column("name", sa.String(255)),
        sa.Column("namespace", sa.String(255)),
        sa.Column("definition", ddl.medium_text()),
        sa.Column("spec", ddl.medium_text()),
        sa.Column("tags", sa.Text()),
        sa.Column("is_system", sa.Boolean()),
        *_scope(),
        *_timestamps(),
    ]


def _execution() -> list[sa.Column]:
    """Workflow, task and action executions."""
    return [
        _id(),
        sa.Column("name", sa.String(255)),
        sa.Column("description", sa.String(255)),
        sa.Column("workflow_name", sa.String(255)),
        sa.Column("workflow_namespace", sa.String(255)),
        sa.Column("workflow_id", sa.String(80)),
        sa.Column("state", sa.String(20)),
        sa.Column("state_info", sa.Text()),
        sa.Column("tags", sa.Text()),
        sa.Column("runtime_context", ddl.long_text()),
        *_scope(),
        *_timestamps(),
    ]


def _indexes(table: str, *columns: str | tuple[str, ...]) -> list[sa.Index]:
    """Plain indexes named ``<table>_<col>[_<col>...]``, as Mistral does."""
    out = []
    for cols in columns:
        cols = (cols,) if isinstance(cols, str) else cols
        out.append(sa.Index("%s_%s" % (table, "_".join(cols)), *cols))
    return out


def _table(meta: sa.MetaData, name: str, *items: Any) -> sa.Table:
    # InnoDB as the migrations ask for it (ddl.create_table); charset
    # and collation stay the server's, as for upstream.
    return sa.Table(name, meta, *items, mysql_engine="InnoDB")


def _definitions(meta: sa.MetaData) -> None:
    _table(
        meta, "workbooks_v2",
        *_definition(),
        sa.UniqueConstraint("name", "namespace", "project_id"),
        *_indexes("workbooks_v2", "project_id", "scope"),
    )
    _table(
        meta, "workflow_definitions_v2",
        sa.Column("checksum", sa.String(32)),
        sa.Column("workbook_name", sa.String(255)),
        *_definition(),
        sa.UniqueConstraint("name", "namespace", "project_id"),
        *_indexes("workflow_definitions_v2", "is_system", "project_id",
                  "scope"),
    )
    _table(
        meta, "action_definitions_v2",
        sa.Column("workbook_name", sa.String(255)),
        sa.Column("description", sa.Text()),
        sa.Column("input", sa.Text()),
        sa.Column("action_class", sa.String(200)),
        sa.Column("attributes", sa.Text()),
        *_definition(),
        sa.UniqueConstraint("name", "namespace", "project_id"),
        *_indexes("action_definitions_v2", "action_class", "is_system",
                  "project_id", "scope"),
    )
    _table(
        meta, "code_sources",
        _id(),
        sa.Column("name", sa.String(255)),
        sa.Column("content", sa.Text()),
        sa.Column("version", sa.Integer()),
        sa.Column("namespace", sa.String(255)),
        sa.Column("tags", sa.Text()),
        *_scope(),
        *_timestamps(),
        sa.UniqueConstraint("name", "namespace", "project_id"),
        *_indexes("code_sources", "project_id", "scope"),
    )
    _table(
        meta, "dynamic_action_definitions",
        _id(),
        sa.Column("name", sa.String(255)),
        sa.Column("namespace", sa.String(255)),
        sa.Column("class_name", sa.String(255)),
        sa.Column("code_source_name", sa.String(255)),
        *_scope(),
        *_timestamps(),
        sa.Column("code_source_id", sa.String(36),
                  sa.ForeignKey("code_sources.id", ondelete="CASCADE"),
                  nullable=False),
        sa.UniqueConstraint("name", "namespace", "project_id"),
        *_indexes("dynamic_action_definitions", "project_id", "scope"),
    )


def _executions(meta: sa.MetaData) -> None:
    # workflow_executions_v2 and task_executions_v2 point at each other:
    # the two foreign keys of that cycle are added once both tables
    # exist (use_alter). root_execution_id's key is declared first so
    # that MySQL numbers it _ibfk_1, as upstream's models get.
    _table(
        meta, "workflow_executions_v2",
        sa.Column("spec", ddl.medium_text()),
        sa.Column("accepted", sa.Boolean()),
        sa.Column("input", ddl.long_text()),
        sa.Column("output", ddl.long_text()),
        sa.Column("params", ddl.long_text()),
        sa.Column("context", ddl.long_text()),
        *_execution(),
        sa.Column("task_execution_id", sa.String(36)),
        sa.Column("root_execution_id", sa.String(36)),
        sa.ForeignKeyConstraint(["root_execution_id"],
                                ["workflow_executions_v2.id"],
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["task_execution_id"],
                                ["task_executions_v2.id"],
                                ondelete="CASCADE", use_alter=True),
        *_indexes("workflow_executions_v2", "project_id", "scope", "state",
                  "updated_at"),
    )
    _table(
        meta, "task_executions_v2",
        sa.Column("spec", ddl.medium_text()),
        sa.Column("action_spec", ddl.long_text()),
        sa.Column("unique_key", sa.String(255), unique=True),
        sa.Column("type", sa.String(10)),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("processed", sa.Boolean()),
        sa.Column("has_next_tasks", sa.Boolean()),
        sa.Column("next_tasks", sa.Text()),
        sa.Column("error_handled", sa.Boolean()),
        sa.Column("in_context", ddl.long_text()),
        sa.Column("published", ddl.long_text()),
        *_execution(),
        sa.Column("workflow_execution_id", sa.String(36),
                  sa.ForeignKey("workflow_executions_v2.id",
                                ondelete="CASCADE", use_alter=True)),
        *_indexes("task_executions_v2", "project_id", "scope", "state",
                  "updated_at", "workflow_execution_id",
                  ("workflow_execution_id", "name")),
    )
    _table(
        meta, "action_executions_v2",
        sa.Column("spec", ddl.medium_text()),
        sa.Column("accepted", sa.Boolean()),
        sa.Column("input", ddl.long_text()),
        sa.Column("output", ddl.long_text()),
        sa.Column("last_heartbeat", sa.DateTime()),
        sa.Column("is_sync", sa.Boolean()),
        *_execution(),
        sa.Column("task_execution_id", sa.String(36),
                  sa.ForeignKey("task_executions_v2.id",
                                ondelete="CASCADE")),
        *_indexes("action_executions_v2", "project_id", "scope", "state",
                  "updated_at"),
    )


def _triggers_and_environments(meta: sa.MetaData) -> None:
    _table(
        meta, "cron_triggers_v2",
        _id(),
        sa.Column("name", sa.String(200)),
        sa.Column("pattern", sa.String(100)),
        sa.Column("first_execution_time", sa.DateTime()),
        sa.Column("next_execution_time", sa.DateTime(), nullable=False),
        sa.Column("workflow_name", sa.String(255)),
        sa.Column("remaining_executions", sa.Integer()),
        sa.Column("workflow_id", sa.String(36),
                  sa.ForeignKey("workflow_definitions_v2.id")),
        sa.Column("workflow_params", sa.Text()),
        sa.Column("workflow_params_hash", sa.CHAR(64)),
        sa.Column("workflow_input", sa.Text()),
        sa.Column("workflow_input_hash", sa.CHAR(64)),
        sa.Column("trust_id", sa.String(80)),
        *_scope(),
        *_timestamps(),
        sa.UniqueConstraint("name", "project_id"),
        sa.UniqueConstraint("workflow_input_hash", "workflow_name",
                            "pattern", "project_id", "workflow_params_hash",
                            "remaining_executions", "first_execution_time"),
        *_indexes("cron_triggers_v2", "next_execution_time", "project_id",
                  "scope", "workflow_name"),
    )
    _table(
        meta, "event_triggers_v2",
        _id(),
        sa.Column("name", sa.String(200)),
        sa.Column("workflow_id", sa.String(36),
                  sa.ForeignKey("workflow_definitions_v2.id")),
        sa.Column("workflow_params", sa.Text()),
        sa.Column("workflow_input", sa.Text()),
        sa.Column("exchange", sa.String(80), nullable=False),
        sa.Column("topic", sa.String(80), nullable=False),
        sa.Column("event", sa.String(80), nullable=False),
        sa.Column("trust_id", sa.String(80)),
        *_scope(),
        *_timestamps(),
        sa.UniqueConstraint("exchange", "topic", "event", "workflow_id",
                            "project_id"),
        *_indexes("event_triggers_v2", ("project_id", "workflow_id")),
    )
    _table(
        meta, "environments_v2",
        _id(),
        sa.Column("name", sa.String(200)),
        sa.Column("description", sa.Text()),
        sa.Column("variables", ddl.long_text()),
        *_scope(),
        *_timestamps(),
        sa.UniqueConstraint("name", "project_id"),
        *_indexes("environments_v2", "name", "project_id", "scope"),
    )
    _table(
        meta, "resource_members_v2",
        _id(),
        sa.Column("resource_id", sa.String(80), nullable=False),
        sa.Column("resource_type", sa.String(50), nullable=False),
        sa.Column("project_id", sa.String(80)),
        sa.Column("member_id", sa.String(80), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("resource_id", "resource_type", "member_id"),
    )


def _scheduling_and_bookkeeping(meta: sa.MetaData) -> None:
    _table(
        meta, "delayed_calls_v2",
        _id(),
        sa.Column("factory_method_path", sa.String(200)),
        sa.Column("target_method_name", sa.String(80), nullable=False),
        sa.Column("method_arguments", sa.Text()),
        sa.Column("serializers", sa.Text()),
        sa.Column("key", sa.String(250)),
        sa.Column("auth_context", ddl.medium_text()),
        sa.Column("execution_time", sa.DateTime(), nullable=False),
        sa.Column("processing", sa.Boolean(), nullable=False),
        *_timestamps(),
        *_indexes("delayed_calls_v2", "execution_time"),
    )
    _table(
        meta, "scheduled_jobs_v2",
        _id(),
        sa.Column("run_after", sa.Integer()),
        sa.Column("target_factory_func_name", sa.String(200)),
        sa.Column("func_name", sa.String(80), nullable=False),
        sa.Column("func_args", sa.Text()),
        sa.Column("func_arg_serializers", sa.Text()),
        sa.Column("auth_ctx", sa.Text()),
        sa.Column("execute_at", sa.DateTime(), nullable=False),
        sa.Column("captured_at", sa.DateTime()),
        sa.Column("key", sa.String(250)),
        *_timestamps(),
        *_indexes("scheduled_jobs_v2", ("execute_at", "captured_at"),
                  "key"),
    )
    _table(
        meta, "named_locks",
        _id(),
        sa.Column("name", sa.String(255), unique=True),
        *_timestamps(),
    )
    _table(
        meta, "mistral_metrics",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("value", sa.String(255), nullable=False),
        *_timestamps(),
    )


# -- the metadata ----------------------------------------------------------

def build() -> sa.MetaData:
    """A new MetaData holding the head schema as the models define it.

    ``create_all`` on a backend with ALTER adds the executions cycle's
    foreign keys after the tables and marks them, on the MetaData
    itself, as not to be rendered inside CREATE TABLE; a later
    ``create_all`` of the same MetaData on SQLite (no ALTER) would lose
    them. Build a fresh MetaData for each database you create.
    """
    meta = sa.MetaData()
    _definitions(meta)
    _executions(meta)
    _triggers_and_environments(meta)
    _scheduling_and_bookkeeping(meta)
    return meta


# Alembic's target_metadata and what verify compares with; only read it
# (create_all on it marks constraints, see build()).
metadata = build()


def create_and_dump(url: str) -> dict:
    """Create the models on the empty database at ``url``; describe it.

    The result has the :mod:`schema_dump` format, so it can be compared
    with a migrated database of the same backend. ``sqlite://`` (in
    memory) works: everything happens on one connection.
    """
    parsed = urls.parse(url)
    in_memory = parsed.backend == "sqlite" and parsed.sqlite_path is None
    engine = sa.create_engine(parsed.to_sqlalchemy(),
                              poolclass=sa.pool.StaticPool if in_memory
                              else sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            found = [t for t in sa.inspect(conn).get_table_names()
                     if not schema_dump.ignored(t)]
            if found:
                raise ValueError("%s is not empty (tables: %s)"
                                 % (engine.url.render_as_string(),
                                    ", ".join(sorted(found))))
            build().create_all(conn)
            return schema_dump.dump_connection(conn)
    finally:
        engine.dispose()
