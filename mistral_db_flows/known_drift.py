"""Upstream's known drift between its migrated head and its models.

Upstream Mistral's migrations (001..045) and its models do not describe
the same schema. We keep the migrated schema (parity with databases
upstream created, which we take over) and the models as they are (they
are what ``create_all`` and autogenerate see), and list every difference
here, once, as the exact lines of :func:`schema_compare.diff` with the
models' schema as *expected* and the migrated schema as *actual*::

    schema_compare.diff(models_schema, migrated_schema, mode)

Each entry says why the difference exists. Nothing is ignored by
pattern: a line not listed here is a real difference, and a listed line
that stops occurring is a stale entry (the tests fail on both).

Lines depend on the backend and on the comparison mode: ``exact`` on
PostgreSQL and MySQL/MariaDB, ``generic`` on every backend (SQLite is
only compared in generic terms: its migrated database carries the
PostgreSQL names, its models' database no names at all).
"""
from __future__ import annotations

import dataclasses

from mistral_db_flows import models
from mistral_db_flows import schema_compare

EXACT = schema_compare.EXACT
GENERIC = schema_compare.GENERIC

PG_EXACT = ("postgresql", EXACT)
MYSQL_EXACT = ("mysql", EXACT)
PG_GENERIC = ("postgresql", GENERIC)
MYSQL_GENERIC = ("mysql", GENERIC)
SQLITE_GENERIC = ("sqlite", GENERIC)

BOTH_EXACT = frozenset({PG_EXACT, MYSQL_EXACT})
# MySQL indexes every foreign key column on its own, so its generic
# index sets differ from those of PostgreSQL and SQLite.
GENERIC_NO_MYSQL = frozenset({PG_GENERIC, SQLITE_GENERIC})
GENERIC_ALL = GENERIC_NO_MYSQL | {MYSQL_GENERIC}
EVERYWHERE = BOTH_EXACT | GENERIC_ALL


@dataclasses.dataclass(frozen=True)
class Drift:
    """One known difference: why, where, and the diff lines it gives."""

    why: str
    where: frozenset
    lines: tuple[str, ...]


# The order in which the migrations leave each table's columns: 001
# created tables with the timestamp and scope columns first, and every
# later revision appended its columns at the end.
_MIGRATED_COLUMN_ORDER = {
    "action_definitions_v2":
        "created_at updated_at scope project_id id name definition spec "
        "tags description input action_class attributes is_system "
        "namespace workbook_name",
    "action_executions_v2":
        "created_at updated_at scope project_id id name description "
        "workflow_name workflow_id spec state state_info tags "
        "runtime_context accepted input output task_execution_id "
        "workflow_namespace last_heartbeat is_sync",
    "code_sources":
        "id name project_id namespace content version tags scope "
        "created_at updated_at",
    "cron_triggers_v2":
        "created_at updated_at scope project_id id name pattern "
        "next_execution_time workflow_name remaining_executions "
        "workflow_id workflow_input workflow_input_hash trust_id "
        "workflow_params workflow_params_hash first_execution_time",
    "delayed_calls_v2":
        "created_at updated_at id factory_method_path target_method_name "
        "method_arguments serializers auth_context execution_time "
        "processing key",
    "dynamic_action_definitions":
        "id name class_name scope project_id code_source_id "
        "code_source_name namespace created_at updated_at",
    "environments_v2":
        "created_at updated_at scope project_id id name description "
        "variables",
    "event_triggers_v2":
        "created_at updated_at project_id scope id name workflow_id "
        "exchange topic event workflow_params workflow_input trust_id",
    "mistral_metrics": "created_at updated_at id name value",
    "named_locks": "created_at updated_at id name",
    "resource_members_v2":
        "id created_at updated_at project_id member_id resource_id "
        "resource_type status",
    "scheduled_jobs_v2":
        "created_at updated_at id run_after target_factory_func_name "
        "func_name func_args func_arg_serializers auth_ctx execute_at "
        "captured_at key",
    "task_executions_v2":
        "created_at updated_at scope project_id id name description "
        "workflow_name workflow_id spec state state_info tags "
        "runtime_context action_spec processed in_context published "
        "workflow_execution_id unique_key type workflow_namespace "
        "started_at finished_at has_next_tasks error_handled next_tasks",
    "workbooks_v2":
        "created_at updated_at scope project_id id name definition spec "
        "tags is_system namespace",
    "workflow_definitions_v2":
        "created_at updated_at scope project_id id name definition spec "
        "tags is_system namespace workbook_name checksum",
    "workflow_executions_v2":
        "created_at updated_at scope project_id id name description "
        "workflow_name workflow_id spec state state_info tags "
        "runtime_context accepted input output params context "
        "task_execution_id workflow_namespace root_execution_id",
}


def _column_order_lines() -> tuple[str, ...]:
    # Same wording as schema_compare; the models' side comes from the
    # models themselves (their order is pinned by the models test).
    out = []
    for table, migrated in sorted(_MIGRATED_COLUMN_ORDER.items()):
        declared = [c.name for c in models.metadata.tables[table].columns]
        out.append("%s: column order %s, expected %s"
                   % (table, migrated.split(), declared))
    return tuple(out)


_CRON_UNIQUE_COLUMNS = (
    "('workflow_input_hash', 'workflow_name', 'pattern', 'project_id', "
    "'workflow_params_hash', 'remaining_executions', "
    "'first_execution_time')")
_ROOT_FK = "('root_execution_id',), 'workflow_executions_v2', ('id',), " \
    "'SET NULL'"
_TASK_FK = "('task_execution_id',), 'task_executions_v2', ('id',), " \
    "'CASCADE'"

DRIFT: tuple[Drift, ...] = (
    Drift(
        why="013 moved executions into workflow/task/action execution "
            "tables without dropping executions_v2 (nor its indexes); "
            "the models no longer have it",
        where=EVERYWHERE,
        lines=("unexpected table executions_v2",)),
    Drift(
        why="column order: 001 put timestamps and scope first and later "
            "revisions appended columns; the models declare them in "
            "another order. Order means nothing to Mistral",
        where=BOTH_EXACT,
        lines=_column_order_lines()),
    Drift(
        why="PostgreSQL keeps the 7-column unique constraint of "
            "cron_triggers_v2 twice: 003 created it (auto-named _key2) "
            "and 014 created it again; on MySQL 014 replaced it",
        where=frozenset({PG_EXACT}),
        lines=("cron_triggers_v2: unexpected unique constraint "
               "('cron_triggers_v2_workflow_input_hash_workflow_name_"
               "pattern_key2', %s)" % _CRON_UNIQUE_COLUMNS,)),
    Drift(
        why="009 added an index on delayed_calls_v2 (processing, "
            "execution_time) that the models never declared",
        where=BOTH_EXACT,
        lines=("delayed_calls_v2: unexpected index "
               "('delayed_calls_v2_processing_execution_time', "
               "('processing', 'execution_time'), False)",)),
    Drift(
        why="same index, in generic terms",
        where=GENERIC_ALL,
        lines=("delayed_calls_v2: unexpected index on "
               "['execution_time', 'processing']",)),
    Drift(
        why="026 indexed task_execution_id of action and workflow "
            "executions by name; the models do not declare these indexes",
        where=frozenset({PG_EXACT}),
        lines=("action_executions_v2: unexpected index "
               "('action_executions_v2_task_execution_id', "
               "('task_execution_id',), False)",
               "workflow_executions_v2: unexpected index "
               "('workflow_executions_v2_task_execution_id', "
               "('task_execution_id',), False)")),
    Drift(
        why="same indexes (026) on MySQL: the named index also serves "
            "the foreign key, so MySQL does not add the automatic index "
            "named after the column that the models' database has",
        where=frozenset({MYSQL_EXACT}),
        lines=("action_executions_v2: missing index "
               "('task_execution_id', ('task_execution_id',), False)",
               "action_executions_v2: unexpected index "
               "('action_executions_v2_task_execution_id', "
               "('task_execution_id',), False)",
               "workflow_executions_v2: missing index "
               "('task_execution_id', ('task_execution_id',), False)",
               "workflow_executions_v2: unexpected index "
               "('workflow_executions_v2_task_execution_id', "
               "('task_execution_id',), False)")),
    Drift(
        why="same indexes (026) in generic terms; on MySQL the column "
            "is indexed on both sides, so there is no generic difference",
        where=GENERIC_NO_MYSQL,
        lines=("action_executions_v2: unexpected index on "
               "['task_execution_id']",
               "workflow_executions_v2: unexpected index on "
               "['task_execution_id']")),
    Drift(
        why="041 widened workflow_executions_v2.description to TEXT; "
            "the models kept String(255)",
        where=BOTH_EXACT,
        lines=("workflow_executions_v2.description: type is 'TEXT', "
               "expected 'VARCHAR(255)'",)),
    Drift(
        why="same column (041), in generic terms",
        where=GENERIC_ALL,
        lines=("workflow_executions_v2.description: generic is 'Text', "
               "expected 'String(255)'",)),
    Drift(
        why="023 added root_execution_id as VARCHAR(80) without a "
            "foreign key; the models say String(36) referencing "
            "workflow_executions_v2.id ON DELETE SET NULL",
        where=BOTH_EXACT,
        lines=("workflow_executions_v2.root_execution_id: type is "
               "'VARCHAR(80)', expected 'VARCHAR(36)'",)),
    Drift(
        why="same column (023), in generic terms",
        where=GENERIC_ALL,
        lines=("workflow_executions_v2.root_execution_id: generic is "
               "'String(80)', expected 'String(36)'",
               "workflow_executions_v2: missing foreign key (%s)"
               % _ROOT_FK)),
    Drift(
        why="root_execution_id's missing foreign key (023) on "
            "PostgreSQL",
        where=frozenset({PG_EXACT}),
        lines=("workflow_executions_v2: missing foreign key "
               "('workflow_executions_v2_root_execution_id_fkey', %s)"
               % _ROOT_FK,)),
    Drift(
        why="root_execution_id's missing foreign key (023) on MySQL: "
            "no automatic index for it either, and the foreign key on "
            "task_execution_id is numbered _ibfk_1 instead of _ibfk_2 "
            "(same key, another automatic name)",
        where=frozenset({MYSQL_EXACT}),
        lines=("workflow_executions_v2: missing index "
               "('root_execution_id', ('root_execution_id',), False)",
               "workflow_executions_v2: missing foreign key "
               "('workflow_executions_v2_ibfk_1', %s)" % _ROOT_FK,
               "workflow_executions_v2: missing foreign key "
               "('workflow_executions_v2_ibfk_2', %s)" % _TASK_FK,
               "workflow_executions_v2: unexpected foreign key "
               "('workflow_executions_v2_ibfk_1', %s)" % _TASK_FK)),
    Drift(
        why="no foreign key on root_execution_id (023), so MySQL has no "
            "automatic index on it, in generic terms",
        where=frozenset({MYSQL_GENERIC}),
        lines=("workflow_executions_v2: missing index on "
               "['root_execution_id']",)),
    Drift(
        why="040 created code_sources with name, content and version "
            "NOT NULL; the models leave them nullable",
        where=EVERYWHERE,
        lines=("code_sources.name: nullable is False, expected True",
               "code_sources.content: nullable is False, expected True",
               "code_sources.version: nullable is False, expected True")),
    Drift(
        why="040 created dynamic_action_definitions with name, "
            "class_name and code_source_name NOT NULL; the models leave "
            "them nullable",
        where=EVERYWHERE,
        lines=("dynamic_action_definitions.name: nullable is False, "
               "expected True",
               "dynamic_action_definitions.class_name: nullable is False, "
               "expected True",
               "dynamic_action_definitions.code_source_name: nullable is "
               "False, expected True")),
    Drift(
        why="034 created scheduled_jobs_v2.func_name nullable; the "
            "models say NOT NULL",
        where=EVERYWHERE,
        lines=("scheduled_jobs_v2.func_name: nullable is True, "
               "expected False",)),
)


def _dialect(dialect: str) -> str:
    return {"mariadb": "mysql", "pg": "postgresql"}.get(dialect, dialect)


def default_mode(dialect: str) -> str:
    """How a backend is compared: exact, but generic on SQLite."""
    return GENERIC if _dialect(dialect) == "sqlite" else EXACT


def _where(dialect: str, mode: str | None) -> tuple[str, str]:
    d = _dialect(dialect)
    key = (d, mode or default_mode(d))
    if key not in EVERYWHERE:
        raise ValueError("no known drift for %s in %s mode" % key)
    return key


def reasons(dialect: str, mode: str | None = None) -> dict[str, str]:
    """Each accepted difference line with the reason it is accepted."""
    key = _where(dialect, mode)
    return {line: d.why for d in DRIFT if key in d.where
            for line in d.lines}


def ignored_differences(dialect: str, mode: str | None = None
                        ) -> list[str]:
    """The exact lines of ``diff(models, migrated, mode)`` to accept.

    ``dialect`` is ``postgresql``, ``mysql`` (or ``mariadb``) or
    ``sqlite``; ``mode`` defaults to :func:`default_mode`.
    """
    key = _where(dialect, mode)
    return [line for d in DRIFT if key in d.where for line in d.lines]


def unknown(lines: list[str], dialect: str, mode: str | None = None
            ) -> list[str]:
    """The difference lines that are not upstream's known drift."""
    accepted = set(ignored_differences(dialect, mode))
    return [line for line in lines if line not in accepted]


def absent(lines: list[str], dialect: str, mode: str | None = None
           ) -> list[str]:
    """Known drift lines that did not occur (a stale list)."""
    found = set(lines)
    return [line for line in ignored_differences(dialect, mode)
            if line not in found]
