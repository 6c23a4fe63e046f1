"""Describe a live database schema as plain data.

The description has the shape of the upstream reference dumps (see
``docs/schema.md``) so that a migrated database can be compared with
upstream Mistral's schema at any revision, and so that ``verify`` can
compare a database with the models.
"""
from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from mistral_db_flows import urls

# Alembic's own bookkeeping is not part of Mistral's schema.
IGNORED_TABLES = frozenset({"alembic_version"})


def ignored(table: str) -> bool:
    """Not Mistral's: Alembic's version table, and the revert journal a
    run keeps while it is open (``mistral_db_flows.revert``)."""
    from mistral_db_flows.revert import names

    return table in IGNORED_TABLES or names.is_journal_table(table)

_MYSQL_OPTION_KEYS = ("mysql_collate", "mysql_default charset",
                      "mysql_engine")


def generic_type(native: str) -> str:
    """Map a reflected native type to its backend-neutral name."""
    t = native.upper()
    m = re.match(r"^(?:VARCHAR|NVARCHAR)\((\d+)\)", t)
    if m:
        return "String(%s)" % m.group(1)
    m = re.match(r"^(?:CHAR|NCHAR)\((\d+)\)", t)
    if m:
        return "Char(%s)" % m.group(1)
    if t in ("TEXT", "MEDIUMTEXT", "LONGTEXT", "TINYTEXT", "CLOB"):
        return "Text"
    if t in ("BOOLEAN", "BOOL", "TINYINT(1)"):
        return "Boolean"
    if re.match(r"^(INTEGER|INT)(\(\d+\))?$", t):
        return "Integer"
    if re.match(r"^BIGINT(\(\d+\))?$", t):
        return "BigInteger"
    if t.startswith("TIMESTAMP") or t.startswith("DATETIME"):
        return "DateTime"
    return t


def native_type(sa_type: Any, dialect: sa.engine.Dialect) -> str:
    """Compile a reflected type for its dialect, without collation."""
    text = sa_type.compile(dialect=dialect).upper()
    text = re.sub(r"\s+COLLATE\s+\S+", "", text)
    text = re.sub(r"\s+CHARACTER SET\s+\S+", "", text)
    return text.strip()


def _column(col: dict, dialect: sa.engine.Dialect) -> dict:
    native = native_type(col["type"], dialect)
    out: dict[str, Any] = {
        "name": col["name"],
        "type": native,
        "generic": generic_type(native),
        "nullable": bool(col["nullable"]),
    }
    if col.get("default") is not None:
        out["default"] = col["default"]
    if col.get("autoincrement") is True:
        out["autoincrement"] = True
    return out


# What is reflected per table, in one batch per kind for all tables
# (SQLAlchemy 2's get_multi_*: a few catalog queries on PostgreSQL
# instead of six per table).
_KINDS = ("columns", "pk_constraint", "unique_constraints", "indexes",
          "foreign_keys")


def _order(item: dict) -> tuple:
    return (str(item["name"]), repr(sorted(item.items(), key=str)))


def _table(found: dict[str, Any], dialect: sa.engine.Dialect) -> dict:
    pk = found["pk_constraint"] or {}
    uniques = [{"name": u["name"], "columns": list(u["column_names"])}
               for u in found["unique_constraints"]]
    backing = {(u["name"], tuple(u["columns"])) for u in uniques}
    indexes = [{"name": i["name"], "columns": list(i["column_names"]),
                "unique": bool(i["unique"])}
               for i in found["indexes"]
               if not i.get("duplicates_constraint")
               and not (i["unique"] and (i["name"], tuple(i["column_names"]))
                        in backing)]
    fks = []
    for fk in found["foreign_keys"]:
        opts = fk.get("options") or {}
        fks.append({
            "name": fk["name"],
            "columns": list(fk["constrained_columns"]),
            "referred_table": fk["referred_table"],
            "referred_columns": list(fk["referred_columns"]),
            "ondelete": (opts.get("ondelete") or None),
            "onupdate": (opts.get("onupdate") or None),
        })
    table: dict[str, Any] = {
        "columns": [_column(c, dialect) for c in found["columns"]],
        "primary_key": {"name": pk.get("name"),
                        "columns": list(pk.get("constrained_columns") or [])},
        # Unnamed constraints (SQLite) sort by what they are, so a dump
        # never depends on the order reflection happens to give.
        "unique_constraints": sorted(uniques, key=_order),
        "indexes": sorted(indexes, key=_order),
        "foreign_keys": sorted(fks, key=_order),
    }
    if "table_options" in found:
        raw = found["table_options"]
        table["options"] = {k: raw[k] for k in _MYSQL_OPTION_KEYS if k in raw}
    return table


def dump_connection(conn: sa.Connection) -> dict:
    """Reflect every Mistral table reachable through ``conn``."""
    insp = sa.inspect(conn)
    names = sorted(n for n in insp.get_table_names() if not ignored(n))
    kinds: tuple[str, ...] = _KINDS
    if conn.dialect.name in ("mysql", "mariadb"):
        kinds += ("table_options",)
    by_kind = {}
    for kind in kinds:
        reflected = getattr(insp, "get_multi_" + kind)(filter_names=names)
        by_kind[kind] = {key[1]: value for key, value in reflected.items()}
    return {
        "dialect": conn.dialect.name,
        "tables": {n: _table({k: by_kind[k].get(n) or
                              ({} if k in ("pk_constraint", "table_options")
                               else []) for k in kinds}, conn.dialect)
                   for n in names},
    }


def dump_url(url: str) -> dict:
    """Reflect the schema of the database at ``url``."""
    engine = sa.create_engine(urls.parse(url).to_sqlalchemy(),
                              poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return dump_connection(conn)
    finally:
        engine.dispose()


# Views, triggers and routines, as (kind, name, table) rows. Mistral
# creates none of them, so whatever is there is an operator's; verify
# reports them. The catalogs are the backend's own: SQLAlchemy reflects
# views but neither triggers nor routines.
_OTHER_OBJECTS = {
    "sqlite":
        # A view's tbl_name is its own name.
        "SELECT type, name, "
        "CASE type WHEN 'trigger' THEN tbl_name END FROM sqlite_master "
        "WHERE type IN ('view', 'trigger') AND name NOT LIKE 'sqlite_%'",
    "postgresql":
        "SELECT 'view', table_name, NULL FROM information_schema.views "
        "WHERE table_schema = current_schema() "
        "UNION SELECT 'trigger', trigger_name, event_object_table "
        "FROM information_schema.triggers "
        "WHERE trigger_schema = current_schema() "
        "UNION SELECT 'routine', routine_name, NULL "
        "FROM information_schema.routines "
        "WHERE routine_schema = current_schema()",
    "mysql":
        "SELECT 'view', table_name, NULL FROM information_schema.views "
        "WHERE table_schema = DATABASE() "
        "UNION SELECT 'trigger', trigger_name, event_object_table "
        "FROM information_schema.triggers "
        "WHERE trigger_schema = DATABASE() "
        "UNION SELECT 'routine', routine_name, NULL "
        "FROM information_schema.routines "
        "WHERE routine_schema = DATABASE()",
}


def other_objects(conn: sa.Connection) -> list[str]:
    """The views, triggers and routines reachable through ``conn``.

    Labels for people, sorted: ``view v``, ``trigger t on table``,
    ``routine f``.
    """
    dialect = {"mariadb": "mysql"}.get(conn.dialect.name,
                                       conn.dialect.name)
    query = _OTHER_OBJECTS.get(dialect)
    if query is None:
        return []
    labels = set()
    for kind, name, table in conn.execute(sa.text(query)):
        labels.add("%s %s on %s" % (kind, name, table) if table
                   else "%s %s" % (kind, name))
    return sorted(labels)
