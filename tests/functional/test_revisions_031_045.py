"""Revisions 031..045: schema, re-runs, offline SQL and data migrations.

Only our own migrations are used (upstream is not installed in CI): a
database is walked to the revision before the one under test, seeded,
upgraded, and checked against upstream's reference schema and the rows
the data migrations must leave.
"""
from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa

from mistral_db_flows import ddl
from mistral_db_flows import migration
from tests import dbs
from tests import migrate_util
from tests import reference
from tests import conftest

# Statements with :name parameters, one transaction.
_execute = migrate_util.execute

OURS = ["%03d" % n for n in range(31, 46)]

OFFLINE_URLS = {
    "postgresql": "postgresql+psycopg2://u@localhost/mistral",
    "mysql": "mysql+pymysql://u@localhost/mistral",
}

# A bound parameter left in an offline script: ":name", "%(name)s", "?".
_BOUND = re.compile(r"(?<![:\w]):[A-Za-z_]\w*|%\(\w+\)s|\?")


def _previous(revision: str) -> str:
    return "%03d" % (int(revision) - 1)


def _offline(dialect: str, start: str, end: str) -> str:
    out = io.StringIO()
    migration.upgrade(OFFLINE_URLS[dialect], "%s:%s" % (start, end),
                      sql=True, output=out)
    return out.getvalue()


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _rerun(url: str, revision: str) -> None:
    """Upgrade ``revision`` again as if its version write had been lost."""
    migrate_util.set_version(url, _previous(revision))
    migration.upgrade(url, revision)
    assert migrate_util.version(url) == revision


# Offline SQL is produced for PostgreSQL and MySQL only.
SERVERS = conftest.server_params()


# -- offline scripts (no database needed) -----------------------------------

@pytest.mark.parametrize("dialect", sorted(OFFLINE_URLS))
def test_offline_script_has_literal_values_only(dialect):
    """030:045 --sql renders every value inline, with no bound parameter.

    Upstream's 042 printed an unbound parameter instead of the
    maintenance row.
    """
    script = _offline(dialect, "030", "045")
    code = "\n".join(line for line in script.splitlines()
                     if not line.startswith("--"))
    code = re.sub(r"'[^']*'", "''", code)  # values inside quotes are data
    assert _BOUND.findall(code) == []
    assert "'maintenance_status', 'RUNNING'" in script
    for revision in OURS:
        assert "version_num='%s'" % revision in script


def test_offline_mysql_keeps_namespace_keys_in_035_036():
    """On MySQL 035 and 036 change nothing (the key named "name" stays)."""
    script = _offline("mysql", "034", "036")
    statements = [line for line in script.splitlines()
                  if line.strip() and not line.startswith("--")
                  and "alembic_version" not in line]
    assert statements == []


def test_offline_postgresql_drops_old_keys_in_035_036():
    """On PostgreSQL 035 and 036 drop the (name, project_id) keys."""
    script = _offline("postgresql", "034", "036")
    assert ("DROP CONSTRAINT workflow_definitions_v2_name_project_id_key"
            in script)
    assert "DROP CONSTRAINT workbooks_v2_name_project_id_key" in script


# -- schema, step by step ----------------------------------------------------

@pytest.mark.slow
def test_each_revision_gives_reference_schema_and_reruns(db_url):
    """Each of 031..045 gives upstream's schema, also when run twice."""
    migration.upgrade(db_url, "030")
    for revision in OURS:
        migration.upgrade(db_url, revision)
        assert migrate_util.schema_diff(db_url, revision) == [], revision
        _rerun(db_url, revision)
        assert migrate_util.schema_diff(db_url, revision) == [], revision
    assert migrate_util.version(db_url) == reference.HEAD


@pytest.mark.slow
@pytest.mark.parametrize("backend", SERVERS, indirect=True)
def test_offline_script_applied_by_hand_gives_reference(backend, make_db):
    """The --sql script 030:045 run by hand on a DB at 030 gives 045."""
    url = make_db(backend)
    migration.upgrade(url, "030")
    migrate_util.execute_raw(
        url, migrate_util.offline_statements(url, "030", "045"))
    assert migrate_util.schema_diff(url, "045") == []


@pytest.mark.slow
@pytest.mark.parametrize("backend", SERVERS, indirect=True)
def test_half_applied_revisions_complete(backend, tmp_path):
    """After any prefix of a revision's statements, upgrade finishes it."""
    failures = {}
    for revision in OURS:
        previous = _previous(revision)
        probe = dbs.create(backend, tmp_path)
        try:
            statements = migrate_util.offline_statements(
                probe, previous, revision)
        finally:
            dbs.drop(probe)
        for k in range(1, len(statements)):
            url = dbs.create(backend, tmp_path)
            try:
                migration.upgrade(url, previous)
                migrate_util.execute_raw(url, statements[:k])
                migration.upgrade(url, revision)
                diff = migrate_util.schema_diff(url, revision)
                if diff:
                    failures["%s after %d" % (revision, k)] = diff
            except Exception as exc:  # report every prefix at once
                failures["%s after %d" % (revision, k)] = repr(exc)
            finally:
                dbs.drop(url)
    assert failures == {}


class _Crash(Exception):
    """Stands for the process dying between two operations."""


_DDL_OPERATIONS = ("create_table", "drop_table", "add_column", "drop_column",
                   "alter_column", "create_index", "drop_index",
                   "create_unique", "drop_unique", "create_foreign_key",
                   "drop_foreign_key", "execute")


def _crash_after(monkeypatch, count: int) -> None:
    """Make the ``count``-th ddl operation of the next upgrade crash."""
    done = [0]
    for name in _DDL_OPERATIONS:
        real = getattr(ddl, name)

        def wrapper(*args, _real=real, **kw):
            result = _real(*args, **kw)
            done[0] += 1
            if done[0] == count:
                raise _Crash()
            return result

        monkeypatch.setattr(ddl, name, wrapper)


@pytest.mark.slow
def test_sqlite_revisions_complete_after_a_crash(make_db, monkeypatch):
    """SQLite commits DDL one statement at a time: after a crash between
    any two operations of a revision, upgrading again completes it.

    (PostgreSQL and MySQL are covered statement by statement from the
    offline script above.)
    """
    failures = {}
    for revision in OURS:
        count = 1
        while True:
            url = make_db("sqlite")
            migration.upgrade(url, _previous(revision))
            with monkeypatch.context() as patch:
                _crash_after(patch, count)
                try:
                    migration.upgrade(url, revision)
                except _Crash:
                    crashed = True
                else:
                    crashed = False
            if not crashed:
                break
            try:
                migration.upgrade(url, revision)
                diff = migrate_util.schema_diff(url, revision)
                if diff:
                    failures["%s after %d" % (revision, count)] = diff
            except Exception as exc:  # report every crash point at once
                failures["%s after %d" % (revision, count)] = repr(exc)
            dbs.drop(url)
            count += 1
    assert failures == {}


# -- data migrations ---------------------------------------------------------

@pytest.mark.slow
def test_037_sets_null_action_namespaces_to_empty(db_url):
    """037 really sets namespace '' on existing action definitions."""
    migration.upgrade(db_url, "036")
    for i, name in enumerate(["std.echo", "my.action"]):
        _execute(
            db_url,
            "INSERT INTO action_definitions_v2 (id, name, project_id,"
            " scope, is_system) VALUES (:id, :name, '<default-project>',"
            " 'private', :system)",
            params=dict(id="a%d" % i, name=name, system=i == 0))
    migration.upgrade(db_url, "037")
    expected = [("a0", "std.echo", ""), ("a1", "my.action", "")]
    query = ("SELECT id, name, namespace FROM action_definitions_v2 "
             "ORDER BY id")
    assert migrate_util.rows(db_url, query) == expected
    _rerun(db_url, "037")
    assert migrate_util.rows(db_url, query) == expected


@pytest.mark.slow
def test_037_new_key_is_per_namespace(db_url):
    """After 037 one action name may exist once per namespace."""
    migration.upgrade(db_url, "037")
    insert = ("INSERT INTO action_definitions_v2 (id, name, namespace,"
              " project_id) VALUES (:id, 'a', :ns, 'p')")
    _execute(db_url, insert, params=dict(id="1", ns=""))
    _execute(db_url, insert, params=dict(id="2", ns="other"))
    with pytest.raises(sa.exc.IntegrityError):
        _execute(db_url, insert, params=dict(id="3", ns="other"))


@pytest.mark.slow
def test_038_deletes_delayed_calls_without_key(db_url):
    """038 deletes exactly the delayed calls whose key is NULL."""
    migration.upgrade(db_url, "037")
    insert = ("INSERT INTO delayed_calls_v2 (id, target_method_name,"
              " execution_time, processing, {key}) VALUES (:id, 'f',"
              " '2020-01-01 00:00:00', :processing, :key)")
    # "key" is reserved on MySQL.
    quoted = sa.engine.make_url(db_url).get_dialect()(
        ).identifier_preparer.quote("key")
    for id_, key in (("d1", None), ("d2", "k2"), ("d3", None),
                     ("d4", "k4")):
        _execute(db_url, insert.format(key=quoted),
                 params=dict(id=id_, key=key, processing=False))
    migration.upgrade(db_url, "038")
    query = "SELECT id FROM delayed_calls_v2 ORDER BY id"
    assert migrate_util.rows(db_url, query) == [("d2",), ("d4",)]
    _rerun(db_url, "038")
    assert migrate_util.rows(db_url, query) == [("d2",), ("d4",)]


METRICS_042 = "SELECT id, name, value FROM mistral_metrics ORDER BY id"


@pytest.mark.slow
def test_042_adds_the_maintenance_row_once(db_url):
    """042 adds (1, maintenance_status, RUNNING); a re-run adds nothing."""
    migration.upgrade(db_url, "042")
    expected = [(1, "maintenance_status", "RUNNING")]
    assert migrate_util.rows(db_url, METRICS_042) == expected
    _rerun(db_url, "042")
    assert migrate_util.rows(db_url, METRICS_042) == expected


@pytest.mark.slow
def test_044_keeps_metrics_rows_and_numbers_new_ones(db_url):
    """044 rebuilds the table keeping its rows; new ids follow them."""
    migration.upgrade(db_url, "043")
    _execute(db_url, "UPDATE mistral_metrics SET value = 'PAUSED'")
    _execute(db_url, "INSERT INTO mistral_metrics (id, name, value) "
                     "VALUES (2, 'other', 'x')")
    migration.upgrade(db_url, "044")
    expected = [(1, "maintenance_status", "PAUSED"), (2, "other", "x")]
    assert migrate_util.rows(db_url, METRICS_042) == expected
    assert migrate_util.rows(db_url, "SELECT COUNT(*) FROM mistral_metrics "
                         "WHERE created_at IS NULL "
                         "OR updated_at IS NULL") == [(0,)]
    _rerun(db_url, "044")
    assert migrate_util.rows(db_url, METRICS_042) == expected
    # The sequence / AUTO_INCREMENT is past the kept ids (InnoDB may
    # leave a gap after a multi-row INSERT ... SELECT).
    _execute(db_url, "INSERT INTO mistral_metrics (name, value) "
                     "VALUES ('third', 'y')")
    new_id, name, value = migrate_util.rows(db_url, METRICS_042)[-1]
    assert (name, value) == ("third", "y") and new_id > 2
    assert "mistral_metrics_old" not in _tables(db_url)


@pytest.mark.slow
def test_044_restores_a_missing_maintenance_row(db_url):
    """044 ends with the maintenance row even if it had been deleted."""
    migration.upgrade(db_url, "043")
    _execute(db_url, "DELETE FROM mistral_metrics")
    migration.upgrade(db_url, "044")
    assert migrate_util.rows(db_url, METRICS_042) == [(1, "maintenance_status",
                                           "RUNNING")]


@pytest.mark.slow
@pytest.mark.parametrize("backend", SERVERS, indirect=True)
def test_044_keeps_rows_after_a_crash_mid_rebuild(backend, make_db):
    """A crash between dropping and re-creating the table loses no row."""
    url = make_db(backend)
    migration.upgrade(url, "043")
    _execute(url, "UPDATE mistral_metrics SET value = 'PAUSED'")
    statements = migrate_util.offline_statements(url, "043", "044")
    drop = next(i for i, s in enumerate(statements)
                if s.startswith("DROP TABLE mistral_metrics"))
    migrate_util.execute_raw(url, statements[:drop + 1])
    assert "mistral_metrics" not in _tables(url)
    migration.upgrade(url, "044")
    assert migrate_util.rows(url, METRICS_042) == [(1, "maintenance_status", "PAUSED")]
    assert migrate_util.schema_diff(url, "044") == []
