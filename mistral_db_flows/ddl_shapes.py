"""Types and reflected shapes the ``ddl`` operations compare.

Pure helpers on an Inspector's answers and a dialect: no Alembic.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import sqlalchemy as sa

from mistral_db_flows import schema_dump


# -- types -----------------------------------------------------------------

def long_text() -> sa.types.TypeEngine:
    """TEXT, but LONGTEXT on MySQL (Mistral's large JSON columns)."""
    from sqlalchemy.dialects import mysql

    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def medium_text() -> sa.types.TypeEngine:
    """TEXT, but MEDIUMTEXT on MySQL."""
    from sqlalchemy.dialects import mysql

    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def native(type_: Any, dialect: Any) -> str:
    return schema_dump.native_type(sa.types.to_instance(type_), dialect)


def norm_native(text: str) -> str:
    t = text.upper()
    t = re.sub(r"^(INTEGER|INT)\(\d+\)$", "INTEGER", t)
    if t in ("BOOL", "TINYINT(1)"):
        return "BOOLEAN"
    return t


def same_native(a: str, b: str) -> bool:
    return norm_native(a) == norm_native(b)


def same_generic(a: str, b: str) -> bool:
    return (schema_dump.generic_type(norm_native(a))
            == schema_dump.generic_type(norm_native(b)))


# -- reflection helpers ----------------------------------------------------

def columns(insp: sa.Inspector, table: str) -> dict[str, Any]:
    return {c["name"]: c for c in insp.get_columns(table)}


def describe_columns(cols: Mapping[str, dict], dialect: Any) -> str:
    return ", ".join(
        "%s %s%s" % (n, native(c["type"], dialect),
                     "" if c["nullable"] else " NOT NULL")
        for n, c in cols.items())


def unique_by_name(insp: sa.Inspector, table: str) -> dict[str, list]:
    found: dict[str, list] = {
        u["name"]: list(u["column_names"])
        for u in insp.get_unique_constraints(table) if u["name"]}
    # MySQL also shows unique constraints as unique indexes.
    for i in insp.get_indexes(table):
        if i["unique"] and i["name"] and i["name"] not in found:
            found[i["name"]] = list(i["column_names"])
    return found


def index_by_name(insp: sa.Inspector, table: str) -> dict[str, Any]:
    return {i["name"]: i for i in insp.get_indexes(table) if i["name"]}


def fk_by_name(insp: sa.Inspector, table: str) -> dict[str, Any]:
    return {f["name"]: f for f in insp.get_foreign_keys(table) if f["name"]}
