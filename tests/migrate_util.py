"""Helpers for functional tests that walk the schema history."""
from __future__ import annotations

import io
import re

from typing import Any

import sqlalchemy as sa

from mistral_db_flows import migration
from mistral_db_flows import version_table
from mistral_db_flows import schema_compare
from mistral_db_flows import schema_dump
from tests import dbs
from tests import reference


def backend_of(url: str) -> str:
    name = sa.engine.make_url(url).get_backend_name()
    return {"postgresql": "postgresql", "sqlite": "sqlite"}.get(name, "mysql")


def schema_diff(url: str, revision: str) -> list[str]:
    """Differences of the live schema from upstream's at ``revision``.

    Exact on PostgreSQL and MariaDB; generic against PostgreSQL's
    reference on SQLite (upstream has no SQLite schema past 001).
    """
    backend = backend_of(url)
    expected = reference.schema(dbs.REFERENCE_DIALECT[backend], revision)
    mode = (schema_compare.GENERIC if backend == "sqlite"
            else schema_compare.EXACT)
    return schema_compare.diff(expected, schema_dump.dump_url(url), mode)


def rows(url: str, query: str) -> list[tuple]:
    """Every row a query returns, as tuples."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def set_version(url: str, revision: str) -> None:
    """Pretend the database is at ``revision`` (simulates a crash)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"),
                         {"v": revision})
    finally:
        engine.dispose()


def version(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            revs = version_table.current_revisions(conn)
    finally:
        engine.dispose()
    return revs[0] if revs else None


_BOOKKEEPING = re.compile(
    r"^\s*(BEGIN|COMMIT|START TRANSACTION)\b|alembic_version", re.I)


def offline_statements(url: str, start: str | None, end: str) -> list[str]:
    """The statements of the offline script ``start:end`` for url's dialect.

    Alembic bookkeeping (transactions, alembic_version) is left out.
    """
    out = io.StringIO()
    target = "%s:%s" % (start, end) if start else end
    migration.upgrade(url, target, sql=True, output=out)
    statements = []
    current: list[str] = []
    for line in out.getvalue().splitlines():
        if not current and (not line.strip() or line.startswith("--")):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            text = "\n".join(current).strip()
            current = []
            if not _BOOKKEEPING.search(text):
                statements.append(text.rstrip(";"))
    return statements


def execute(url: str, *statements: str, params: Any = None) -> None:
    """Statements with bound parameters (``:name``; a dict, or a list of
    dicts for many rows), all in one transaction."""
    if not all(isinstance(s, str) for s in statements):
        raise TypeError("parameters go in params=, not among statements")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement), params or {})
    finally:
        engine.dispose()


def execute_raw(url: str, statements: list[str]) -> None:
    """Run statements one by one, each committed (like MySQL DDL)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement.replace("%", "%%")
                                     if backend_of(url) != "sqlite"
                                     else statement)
                conn.commit()
    finally:
        engine.dispose()
