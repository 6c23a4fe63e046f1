"""Read the rows populate manages, and write a plan in few statements.

Plain DB-API through :class:`mistral_db_flows.dbapi.Handle` (importing
SQLAlchemy would cost a third of what a populate run may take). Only
the columns populate needs are named here: one SELECT per definition
table, one more per referencing table only when a system workflow has
disappeared, then executemany INSERT/UPDATE and one DELETE. Nothing is
written when the plan is empty.

Values are what SQLAlchemy's types would send and give back: Python
booleans for ``is_system`` (the drivers store PostgreSQL booleans and
MySQL/SQLite 1/0), read back as bools; naive UTC datetimes, on SQLite as
the text SQLAlchemy's DateTime stores there.
"""
from __future__ import annotations

import contextlib
import datetime
import uuid
from typing import Any, Iterator

from mistral_db_flows import dbapi
from mistral_db_flows import exceptions
from mistral_db_flows.populate import plan as plan_mod
from mistral_db_flows.populate import spec

_COMMON = ("id", "scope", "project_id", "name", "definition", "spec",
           "tags", "is_system", "namespace", "workbook_name")

TABLES = {spec.ACTION: "action_definitions_v2",
          spec.WORKFLOW: "workflow_definitions_v2"}
# What read() returns per kind (no timestamps: populate never compares
# them).
COLUMNS = {
    spec.ACTION: _COMMON + ("description", "input", "action_class",
                            "attributes"),
    spec.WORKFLOW: _COMMON + ("checksum",),
}

# What may point at a workflow definition, and how we name it in reports.
REFERRERS = [
    ("cron_triggers_v2", "cron trigger"),
    ("event_triggers_v2", "event trigger"),
    ("workflow_executions_v2", "workflow execution"),
]

# Fragments of the drivers' "no such table/column" messages.
_MISSING = ("no such table", "no such column", "does not exist",
            "doesn't exist", "unknown column", "undefined")

# SQLAlchemy's DateTime on SQLite stores this text; keep rows identical.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def read(handle: dbapi.Handle, kind: str,
         names: list[str]) -> list[dict[str, Any]]:
    """Rows that could match ``names``; for workflows all system rows."""
    table, columns = TABLES[kind], COLUMNS[kind]
    where: list[str] = []
    params: list[Any] = []
    if names:
        where.append("(name IN (%s) AND project_id = %%s AND "
                     "(namespace = %%s OR namespace IS NULL))"
                     % _marks(names))
        params += list(names) + [spec.PROJECT_ID, spec.NAMESPACE]
    if kind == spec.WORKFLOW:
        where.append("is_system = %s")
        params.append(True)
    if not where:
        return []
    query = "SELECT %s FROM %s WHERE %s" % (
        ", ".join(columns), table, " OR ".join(where))
    with _schema_errors(handle, table):
        found = handle.rows(query, params)
    result = []
    for values in found:
        row = dict(zip(columns, values))
        if row["is_system"] is not None:
            # MySQL and SQLite hand booleans back as 1/0.
            row["is_system"] = bool(row["is_system"])
        result.append(row)
    return result


def referenced(handle: dbapi.Handle,
               ids: list[str]) -> dict[str, list[str]]:
    """For each id in ``ids`` that something refers to, what refers."""
    found: dict[str, list[str]] = {}
    if not ids:
        return found
    for table, label in REFERRERS:
        query = ("SELECT DISTINCT workflow_id FROM %s "
                 "WHERE workflow_id IN (%s)" % (table, _marks(ids)))
        with _schema_errors(handle, table):
            for (workflow_id,) in handle.rows(query, ids):
                found.setdefault(workflow_id, []).append(label)
    return found


def write(handle: dbapi.Handle, plan: plan_mod.Plan,
          delete: list[str]) -> dict[str, Any]:
    """Write ``plan``; return its journal (what :func:`undo` needs)."""
    table = TABLES[plan.kind]
    now = _now(handle.dialect)
    journal: dict[str, Any] = {
        "updated": before_image(handle, plan.kind,
                                [row_id for row_id, _ in plan.update]),
        "deleted": before_image(handle, plan.kind, delete),
        "inserted": [str(uuid.uuid4()) for _ in plan.add]}
    if delete:
        handle.execute("DELETE FROM %s WHERE id IN (%s)"
                       % (table, _marks(delete)), delete).close()
    if plan.update:
        columns = list(plan.update[0][1].columns)
        handle.executemany(
            "UPDATE %s SET %s WHERE id = %%s" % (table, ", ".join(
                "%s = %%s" % c for c in columns + ["updated_at"])),
            [[d.columns[c] for c in columns] + [now, row_id]
             for row_id, d in plan.update])
    if plan.add:
        columns = list(plan.add[0].columns)
        handle.executemany(
            "INSERT INTO %s (%s) VALUES (%s)" % (
                table, ", ".join(columns + ["id", "created_at",
                                            "updated_at"]),
                _marks(range(len(columns) + 3))),
            [[d.columns[c] for c in columns] + [new_id, now, None]
             for d, new_id in zip(plan.add, journal["inserted"])])
    return journal


def before_image(handle: dbapi.Handle, kind: str,
                 ids: list[str]) -> list[dict[str, Any]]:
    """Every column of the rows ``ids``, JSON-ready, to put them back."""
    if not ids:
        return []
    table = TABLES[kind]
    with _schema_errors(handle, table):
        cur = handle.execute("SELECT * FROM %s WHERE id IN (%s)"
                             % (table, _marks(ids)), ids)
        try:
            names = [column[0] for column in cur.description]
            found = cur.fetchall()
        finally:
            cur.close()
    return [{name: _jsonable(value) for name, value in zip(names, values)}
            for values in found]


def undo(handle: dbapi.Handle, kind: str, journal: dict[str, Any]) -> None:
    """Undo one write of ``kind``: delete the rows it inserted, put the
    rows it updated or deleted back as they were. Re-running it after
    it committed changes nothing more (a killed revert resumes)."""
    table = TABLES[kind]
    deleted = list(journal.get("deleted") or [])
    # Updated rows in place: cron triggers and executions may refer to
    # them. Deleted ones again, unless a re-run put them back already.
    doomed = list(journal.get("inserted") or []) + [
        row["id"] for row in deleted]
    if doomed:
        handle.execute("DELETE FROM %s WHERE id IN (%s)"
                       % (table, _marks(doomed)), doomed).close()
    for row in journal.get("updated") or []:
        columns = [c for c in row if c != "id"]
        handle.execute("UPDATE %s SET %s WHERE id = %%s" % (
            table, ", ".join("%s = %%s" % c for c in columns)),
            [row[c] for c in columns] + [row["id"]]).close()
    for row in deleted:
        columns = list(row)
        handle.execute("INSERT INTO %s (%s) VALUES (%s)"
                       % (table, ", ".join(columns), _marks(columns)),
                       [row[c] for c in columns]).close()


def _jsonable(value: Any) -> Any:
    # Timestamps as text every backend reads back to the same value.
    if isinstance(value, datetime.datetime):
        return value.strftime(_SQLITE_DATETIME)
    return value


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


def _now(dialect: str) -> datetime.datetime | str:
    # Naive UTC to the second, as Mistral stores its timestamps.
    now = datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None, microsecond=0)
    return now.strftime(_SQLITE_DATETIME) if dialect == "sqlite" else now


@contextlib.contextmanager
def _schema_errors(handle: dbapi.Handle, table: str) -> Iterator[None]:
    """Turn the driver's "no such table/column" into SchemaNotReady."""
    try:
        yield
    except handle.driver_errors() as exc:
        text = str(exc).strip()
        if any(fragment in text.lower() for fragment in _MISSING):
            raise exceptions.SchemaNotReady(
                "table %s is missing or not at head: %s"
                % (table, (text.splitlines() or [""])[0])) from exc
        raise
