"""The models are upstream's models and agree with the migrations.

On SQLite, PostgreSQL and MariaDB: ``create_all`` of our metadata gives
upstream's own ``create_all`` schema, and a database migrated to head
differs from it by upstream's known drift and nothing else (no more, no
less: a listed difference that disappears fails too).
"""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from alembic import autogenerate
from alembic.runtime import migration as alembic_migration

from mistral_db_flows import known_drift
from mistral_db_flows import migration
from mistral_db_flows import models
from mistral_db_flows import schema_compare
from mistral_db_flows import schema_dump
from tests import conftest
from tests import dbs
from tests import reference

_MODELS_DUMP = {"postgresql": "schema_models_pg",
                "mysql": "schema_models_mysql",
                "sqlite": "schema_models_sqlite"}


def _load(name: str) -> dict:
    return json.loads((reference.REFERENCE_DIR / (name + ".json"))
                      .read_text())


def _drift_report(lines: list[str], backend: str) -> dict:
    mode = known_drift.default_mode(backend)
    return {"unknown": known_drift.unknown(lines, backend, mode),
            "absent": known_drift.absent(lines, backend, mode)}


def test_create_all_is_upstream_models_schema(backend, db_url):
    """create_all equals upstream's schema_models_<backend>.json exactly.

    Exact on every backend, SQLite included (the dump's format is the
    same; unnamed SQLite constraints compare as None).
    """
    got = models.create_and_dump(db_url)
    expected = _load(_MODELS_DUMP[backend])
    assert schema_compare.diff(expected, got, schema_compare.EXACT) == []


def test_autogenerate_finds_nothing_on_models_database(db_url):
    """As target_metadata, the models match what they create: no ops."""
    models.create_and_dump(db_url)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            ctx = alembic_migration.MigrationContext.configure(
                conn, opts={"compare_type": True})
            assert autogenerate.compare_metadata(ctx, models.metadata) == []
    finally:
        engine.dispose()


# Servers slow: there, migrated head == upstream's head dump exactly
# (test_schema_history) and that dump differs from the live models by
# exactly the known drift (the next test).
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_migrated_head_differs_from_models_by_known_drift(backend, make_db):
    """upgrade head vs create_all: exactly the known drift, both ways."""
    models_schema = models.create_and_dump(make_db(backend))
    url = make_db(backend)
    migration.upgrade(url, "head")
    lines = schema_compare.diff(models_schema, schema_dump.dump_url(url),
                                known_drift.default_mode(backend))
    assert _drift_report(lines, backend) == {"unknown": [], "absent": []}


def test_reference_head_differs_from_live_models_by_known_drift(backend,
                                                                db_url):
    """Live create_all vs upstream's migrated head dump: the known drift.

    Stands in for the test above while the revisions are being written;
    SQLite's models are compared with PostgreSQL's head, generically.
    """
    models_schema = models.create_and_dump(db_url)
    head = _load("schema_head_%s" % dbs.REFERENCE_DIALECT[backend])
    lines = schema_compare.diff(models_schema, head,
                                known_drift.default_mode(backend))
    assert _drift_report(lines, backend) == {"unknown": [], "absent": []}


def test_create_and_dump_refuses_a_non_empty_database(db_url):
    """The models' schema is only taken from an empty database."""
    models.create_and_dump(db_url)
    with pytest.raises(ValueError, match="not empty"):
        models.create_and_dump(db_url)


def test_in_memory_sqlite_works():
    """sqlite:// (in memory) gives the same schema as a SQLite file."""
    got = models.create_and_dump("sqlite://")
    assert schema_compare.diff(_load("schema_models_sqlite"), got) == []
