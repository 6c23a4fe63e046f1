"""Read the rows populate manages, and write a plan in few statements.

Only the columns populate needs are declared here (SQLAlchemy Core, no
ORM, no reflection): one SELECT per definition table, one more per
referencing table only when a system workflow has disappeared, then
executemany INSERT/UPDATE and one DELETE. Nothing is written when the
plan is empty.
"""
from __future__ import annotations

import contextlib
import datetime
import uuid
from typing import Any, Iterator

import sqlalchemy as sa

from mistral_db_flows.populate import errors
from mistral_db_flows.populate import plan as plan_mod
from mistral_db_flows.populate import spec

_META = sa.MetaData()


def _common(*extra: sa.Column) -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("scope", sa.String(80)),
        sa.Column("project_id", sa.String(80)),
        sa.Column("name", sa.String(255)),
        sa.Column("definition", sa.Text),
        sa.Column("spec", sa.Text),
        sa.Column("tags", sa.Text),
        sa.Column("is_system", sa.Boolean(create_constraint=False)),
        sa.Column("namespace", sa.String(255)),
        sa.Column("workbook_name", sa.String(255)),
        *extra,
    ]


ACTIONS = sa.Table(
    "action_definitions_v2", _META,
    *_common(sa.Column("description", sa.Text),
             sa.Column("input", sa.Text),
             sa.Column("action_class", sa.String(200)),
             sa.Column("attributes", sa.Text)))
WORKFLOWS = sa.Table(
    "workflow_definitions_v2", _META,
    *_common(sa.Column("checksum", sa.String(32))))

# What may point at a workflow definition, and how we name it in reports.
REFERRERS = [
    (sa.table("cron_triggers_v2", sa.column("workflow_id")),
     "cron trigger"),
    (sa.table("event_triggers_v2", sa.column("workflow_id")),
     "event trigger"),
    (sa.table("workflow_executions_v2", sa.column("workflow_id")),
     "workflow execution"),
]

TABLES = {spec.ACTION: ACTIONS, spec.WORKFLOW: WORKFLOWS}

# Fragments of the drivers' "no such table/column" messages.
_MISSING = ("no such table", "no such column", "does not exist",
            "doesn't exist", "unknown column", "undefined")


def read(conn: sa.Connection, kind: str,
         names: list[str]) -> list[dict[str, Any]]:
    """Rows that could match ``names``; for workflows all system rows."""
    table = TABLES[kind]
    same_key = sa.and_(
        table.c.name.in_(names), table.c.project_id == spec.PROJECT_ID,
        sa.or_(table.c.namespace == spec.NAMESPACE,
               table.c.namespace.is_(None)))
    if kind == spec.WORKFLOW:
        where = sa.or_(table.c.is_system == sa.true(), same_key)
    elif names:
        where = same_key
    else:
        return []
    query = sa.select(*[c for c in table.c
                        if c.name not in ("created_at", "updated_at")])
    with _schema_errors(table.name):
        result = conn.execute(query.where(where))
    return [dict(row._mapping) for row in result]


def referenced(conn: sa.Connection,
               ids: list[str]) -> dict[str, list[str]]:
    """For each id in ``ids`` that something refers to, what refers."""
    found: dict[str, list[str]] = {}
    if not ids:
        return found
    for table, label in REFERRERS:
        query = sa.select(table.c.workflow_id).where(
            table.c.workflow_id.in_(ids)).distinct()
        with _schema_errors(table.name):
            for (workflow_id,) in conn.execute(query):
                found.setdefault(workflow_id, []).append(label)
    return found


def write(conn: sa.Connection, plan: plan_mod.Plan,
          delete: list[str]) -> None:
    table = TABLES[plan.kind]
    now = _now()
    if delete:
        conn.execute(table.delete().where(table.c.id.in_(delete)))
    if plan.update:
        columns = list(plan.update[0][1].columns)
        stmt = table.update().where(
            table.c.id == sa.bindparam("_id")).values(
                {c: sa.bindparam("_" + c)
                 for c in columns + ["updated_at"]})
        conn.execute(stmt, [
            dict({"_" + c: v for c, v in d.columns.items()},
                 _id=row_id, _updated_at=now)
            for row_id, d in plan.update])
    if plan.add:
        conn.execute(table.insert(), [
            dict(d.columns, id=str(uuid.uuid4()), created_at=now,
                 updated_at=None)
            for d in plan.add])


def _now() -> datetime.datetime:
    # Naive UTC to the second, as Mistral stores its timestamps.
    return datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None, microsecond=0)


@contextlib.contextmanager
def _schema_errors(table: str) -> Iterator[None]:
    """Turn "no such table/column" into SchemaNotReady."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        text = str(exc.orig).lower()
        if any(fragment in text for fragment in _MISSING):
            raise errors.SchemaNotReady(
                "table %s is missing or not at head: %s"
                % (table, str(exc.orig).strip().splitlines()[0])) from exc
        raise
