"""The models and the known drift list, checked without a database.

Upstream's reference dumps stand in for live databases: the models'
dump (``schema_models_*.json``) against the migrated head
(``schema_head_*.json``) must differ by exactly the known drift.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from mistral_db_flows import known_drift
from mistral_db_flows import models
from mistral_db_flows import schema_compare
from tests import reference

# (backend, mode, models' dump, migrated head dump): SQLite has no
# upstream head, so its models are compared with PostgreSQL's head.
CASES = [
    ("postgresql", "exact", "schema_models_pg", "schema_head_pg"),
    ("mysql", "exact", "schema_models_mysql", "schema_head_mysql"),
    ("postgresql", "generic", "schema_models_pg", "schema_head_pg"),
    ("mysql", "generic", "schema_models_mysql", "schema_head_mysql"),
    ("sqlite", "generic", "schema_models_sqlite", "schema_head_pg"),
]


def _load(name: str) -> dict:
    return json.loads((reference.REFERENCE_DIR / (name + ".json"))
                      .read_text())


@pytest.mark.parametrize("backend,mode,models_dump,head_dump", CASES)
def test_reference_drift_is_exactly_the_known_drift(backend, mode,
                                                    models_dump, head_dump):
    """diff(upstream models, upstream head) lists the known drift, all of it.

    A difference not in known_drift fails (unknown); a listed line that
    does not occur fails too (absent), so the list cannot go stale.
    """
    lines = schema_compare.diff(_load(models_dump), _load(head_dump), mode)
    assert known_drift.unknown(lines, backend, mode) == []
    assert known_drift.absent(lines, backend, mode) == []
    assert sorted(lines) == sorted(known_drift.ignored_differences(
        backend, mode))


@pytest.mark.parametrize("backend,mode,models_dump,head_dump", CASES)
def test_diff_with_known_drift_ignored_is_empty(backend, mode, models_dump,
                                                head_dump):
    """schema_compare.diff(..., ignore=known drift) reports nothing."""
    ignore = known_drift.ignored_differences(backend, mode)
    assert schema_compare.diff(_load(models_dump), _load(head_dump), mode,
                               ignore=ignore) == []


def test_every_drift_entry_says_why_and_where():
    """Each entry has a reason, at least one line and one place."""
    for entry in known_drift.DRIFT:
        assert entry.why.strip() and entry.lines and entry.where, entry
        assert entry.where <= known_drift.EVERYWHERE, entry


def test_no_line_listed_twice():
    """A line is accepted for one reason only."""
    for key in known_drift.EVERYWHERE:
        lines = known_drift.ignored_differences(*key)
        assert len(lines) == len(set(lines)), key


def test_reasons_cover_every_line():
    """reasons() explains every accepted line."""
    why = known_drift.reasons("mysql")
    assert set(why) == set(known_drift.ignored_differences("mysql"))
    assert all(why.values())


def test_default_modes_and_aliases():
    """Exact on PostgreSQL/MySQL, generic on SQLite; mariadb means mysql."""
    assert known_drift.default_mode("postgresql") == "exact"
    assert known_drift.default_mode("mariadb") == "exact"
    assert known_drift.default_mode("sqlite") == "generic"
    assert (known_drift.ignored_differences("mariadb")
            == known_drift.ignored_differences("mysql"))


def test_sqlite_exact_is_refused():
    """SQLite is only compared in generic terms; exact is an error."""
    with pytest.raises(ValueError):
        known_drift.ignored_differences("sqlite", "exact")


def test_models_cover_upstream_tables():
    """The metadata holds the 16 tables of upstream's models, no more."""
    assert sorted(models.metadata.tables) == sorted(
        _load("schema_models_pg")["tables"])


def test_mysql_large_text_variants():
    """JSON columns compile to LONGTEXT/MEDIUMTEXT on MySQL, TEXT else."""
    from sqlalchemy.dialects import mysql
    from sqlalchemy.dialects import postgresql

    col = models.metadata.tables["task_executions_v2"].c
    my, pg = mysql.dialect(), postgresql.dialect()
    assert col.in_context.type.compile(dialect=my) == "LONGTEXT"
    assert col.spec.type.compile(dialect=my) == "MEDIUMTEXT"
    assert col.in_context.type.compile(dialect=pg) == "TEXT"


def test_create_all_ddl_compiles_offline():
    """The models' DDL renders for every backend without a connection.

    SQLite (no ALTER) keeps the executions cycle's foreign keys inline:
    each backend gets its own build() (see models.build).
    """
    for url in ("postgresql://", "mysql://", "sqlite://"):
        out: list[str] = []
        engine = sa.create_mock_engine(
            url, lambda sql, *a, **k: out.append(str(sql.compile(
                dialect=engine.dialect))))
        models.build().create_all(engine, checkfirst=False)
        assert any("CREATE TABLE workflow_executions_v2" in s for s in out)
    assert "REFERENCES workflow_executions_v2" in "".join(
        s for s in out if "CREATE TABLE task_executions_v2" in s)


def test_import_connects_to_nothing():
    """Importing models and known_drift loads no database driver."""
    code = ("import sys, mistral_db_flows.models, "
            "mistral_db_flows.known_drift; "
            "print(sorted(m for m in ('psycopg2', 'pymysql', 'MySQLdb') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_the_expected_schema_is_cached_per_source(tmp_path, monkeypatch):
    """verify's expected schema: built once, then read from the cache;
    a cache file that is not JSON is rebuilt, not trusted."""
    from mistral_db_flows import models
    from mistral_db_flows.tasks import verify

    built = []
    real = models.create_and_dump
    monkeypatch.setattr(models, "create_and_dump",
                        lambda url: built.append(url) or real(url))
    first = verify.expected_schema(str(tmp_path))
    assert verify.expected_schema(str(tmp_path)) == first
    assert built == ["sqlite://"]
    [cached] = tmp_path.iterdir()
    assert oct(cached.stat().st_mode & 0o777) == "0o600"
    cached.write_text("{not json")
    assert verify.expected_schema(str(tmp_path)) == first
    assert len(built) == 2
