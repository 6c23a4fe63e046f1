"""Revisions 002..015: rows survive, and half-applied revisions complete.

The schema of every revision is checked by test_schema_history; here are
what a schema dump cannot show: rows kept through the column changes
(SQLite copies whole tables in batch mode), the processing flag of 006
filled on existing rows (upstream fails on PostgreSQL there), and 009 and
014 (many statements, per-backend names) re-run after a crash inside.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from mistral_db_flows import exceptions
from mistral_db_flows import migration
from tests import conftest
from tests import migrate_util

# Statements with :name parameters, one transaction.
_execute = migrate_util.execute

WHEN = "2020-01-02 03:04:05"


def _at(make_db, backend: str, revision: str) -> str:
    url = make_db(backend)
    migration.upgrade(url, revision)
    return url


def test_006_fills_processing_on_existing_rows(db_url):
    """006 succeeds with delayed calls present; they read processing false.

    The column also ends NOT NULL without a default, as in the reference.
    """
    migration.upgrade(db_url, "005")
    _execute(db_url, *(
        "INSERT INTO delayed_calls_v2 (id, target_method_name,"
        " execution_time) VALUES ('%s', 'method', '%s')" % (i, WHEN)
        for i in ("call-1", "call-2")))

    migration.upgrade(db_url, "006")

    rows = migrate_util.rows(db_url, "SELECT id, processing FROM delayed_calls_v2"
                         " ORDER BY id")
    assert [(i, bool(p)) for i, p in rows] == [("call-1", False),
                                                ("call-2", False)]
    assert all(p is not None for _, p in rows)
    assert migrate_util.schema_diff(db_url, "006") == []


def test_006_re_run_keeps_the_rows(db_url):
    """A lost version write after 006 does not break the second run."""
    migration.upgrade(db_url, "005")
    _execute(db_url, "INSERT INTO delayed_calls_v2 (id, target_method_name,"
                     " execution_time) VALUES ('call', 'm', '%s')" % WHEN)
    migration.upgrade(db_url, "006")
    migrate_util.set_version(db_url, "005")

    migration.upgrade(db_url, "006")

    assert [(i, bool(p)) for i, p in migrate_util.rows(
        db_url, "SELECT id, processing FROM delayed_calls_v2")] == [
            ("call", False)]
    assert migrate_util.schema_diff(db_url, "006") == []


# Statements an interrupted 009 may have run on SQLite (it has no offline
# script to cut; these are the revision's own names and columns).
SQLITE_PART_OF_009 = [
    "CREATE INDEX executions_v2_state ON executions_v2 (state)",
    "CREATE INDEX executions_v2_task_execution_id"
    " ON executions_v2 (task_execution_id)",
    "CREATE INDEX delayed_calls_v2_processing_execution_time"
    " ON delayed_calls_v2 (processing, execution_time)",
]


# Offline scripts need only the dialect: nothing listens on port 1.
OFFLINE_URLS = {"postgresql": "postgresql+psycopg2://offline@127.0.0.1:1/x",
                "mysql": "mysql+pymysql://offline@127.0.0.1:1/x"}


def _crash_points(backend: str, start: str, end: str) -> list[list[str]]:
    """Prefixes of ``end``'s statements that a crash may have run.

    After the first and before the last statement: each prefix costs a
    fresh database, which is slow on MariaDB.
    """
    if backend == "sqlite":
        return []
    statements = migrate_util.offline_statements(OFFLINE_URLS[backend],
                                                 start, end)
    assert len(statements) > 1
    return [statements[:1], statements[:-1]]


def test_009_completes_after_a_crash_inside(backend, make_db):
    """009 re-run after part of its statements ran gives schema 009."""
    prefixes = _crash_points(backend, "008", "009") or [
        SQLITE_PART_OF_009]
    for prefix in prefixes:
        url = _at(make_db, backend, "008")
        migrate_util.execute_raw(url, prefix)

        migration.upgrade(url, "009")

        assert migrate_util.version(url) == "009"
        assert migrate_util.schema_diff(url, "009") == [], prefix


# Servers slow: a revision finishing after a crash inside it is checked
# on each server in test_009_completes_after_a_crash_inside; 014's
# own crash points on the servers run in CI.
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_014_completes_after_a_crash_inside(backend, make_db):
    """014 re-run after a crash inside or after it gives schema 014.

    On MySQL the first statement drops the 001 key whose name the new
    seven-column key reuses: a re-run must neither drop the new key nor
    call it a conflict. On PostgreSQL the duplicate key is added once.
    """
    for prefix in _crash_points(backend, "013", "014"):
        url = _at(make_db, backend, "013")
        migrate_util.execute_raw(url, prefix)

        migration.upgrade(url, "014")

        assert migrate_util.schema_diff(url, "014") == [], prefix
    # Everything ran but the version was not written (also SQLite).
    url = _at(make_db, backend, "014")
    migrate_util.set_version(url, "013")
    migration.upgrade(url, "014")
    assert migrate_util.version(url) == "014"
    assert migrate_util.schema_diff(url, "014") == []


def test_009_refuses_an_index_of_the_same_name_on_other_columns(db_url):
    """A foreign index named like one of 009's is an error, not a skip."""
    migration.upgrade(db_url, "008")
    _execute(db_url, "CREATE INDEX executions_v2_state"
                     " ON executions_v2 (type)")

    with pytest.raises(exceptions.SchemaConflict) as info:
        migration.upgrade(db_url, "009")

    assert info.value.name == "executions_v2_state"
    assert migrate_util.version(db_url) == "008"


def _seed_001(url: str) -> None:
    _execute(
        url,
        "INSERT INTO workflow_definitions_v2 (id, name, definition, spec,"
        " project_id) VALUES ('wf-1', 'my_wf', 'wf text', '{}', 'p')",
        "INSERT INTO workbooks_v2 (id, name, definition, project_id)"
        " VALUES ('wb-1', 'my_wb', 'wb text', 'p')",
        "INSERT INTO action_definitions_v2 (id, name, definition,"
        " project_id) VALUES ('ad-1', 'my_action', 'ad text', 'p')",
        "INSERT INTO cron_triggers_v2 (id, name, pattern,"
        " next_execution_time, workflow_name, workflow_id,"
        " workflow_input_hash, project_id) VALUES ('ct-1', 'cron',"
        " '* * * * *', '%s', 'my_wf', 'wf-1', 'h', 'p')" % WHEN,
        "INSERT INTO executions_v2 (id, type, state_info, input,"
        " workflow_name) VALUES ('ex-1', 'workflow', 'all fine',"
        " '{\"a\": 1}', 'my_wf')",
    )


@pytest.mark.slow
def test_rows_survive_001_to_015(db_url):
    """Rows written at 001 read the same at 015.

    002, 003, 005, 008, 009, 013 and 014 alter or copy (SQLite) the
    tables these rows live in; 013 creates the new execution tables
    empty and leaves executions_v2 and its rows alone.
    """
    migration.upgrade(db_url, "001")
    _seed_001(db_url)

    migration.upgrade(db_url, "015")

    assert migrate_util.rows(db_url, "SELECT id, name, definition FROM"
                         " workflow_definitions_v2") == [
        ("wf-1", "my_wf", "wf text")]
    assert migrate_util.rows(db_url, "SELECT id, name, definition FROM"
                         " workbooks_v2") == [("wb-1", "my_wb", "wb text")]
    assert migrate_util.rows(db_url, "SELECT id, name, definition FROM"
                         " action_definitions_v2") == [
        ("ad-1", "my_action", "ad text")]
    assert migrate_util.rows(db_url, "SELECT id, workflow_id, workflow_input_hash,"
                         " workflow_params, first_execution_time"
                         " FROM cron_triggers_v2") == [
        ("ct-1", "wf-1", "h".ljust(64) if migrate_util.backend_of(db_url)
         == "postgresql" else "h", None, None)]
    assert migrate_util.rows(db_url, "SELECT id, state_info, input, description"
                         " FROM executions_v2") == [
        ("ex-1", "all fine", '{"a": 1}', None)]
    for table in ("workflow_executions_v2", "task_executions_v2",
                  "action_executions_v2"):
        assert migrate_util.rows(db_url, "SELECT COUNT(*) FROM %s" % table) == [(0,)]
    assert migrate_util.schema_diff(db_url, "015") == []


def test_015_unique_keys_reject_duplicates(db_url):
    """015's keys: one task per unique_key, one call per key and state."""
    migration.upgrade(db_url, "015")
    insert_call = ("INSERT INTO delayed_calls_v2 (id, target_method_name,"
                   " execution_time, processing, unique_key) VALUES"
                   " ('%s', 'm', '" + WHEN + "', %s, 'k')")
    _execute(db_url, insert_call % ("c1", "false"),
             insert_call % ("c2", "true"))

    with pytest.raises(sa.exc.IntegrityError):
        _execute(db_url, insert_call % ("c3", "false"))
    _execute(db_url, "INSERT INTO task_executions_v2 (id, unique_key)"
                     " VALUES ('t1', 'k')")
    with pytest.raises(sa.exc.IntegrityError):
        _execute(db_url, "INSERT INTO task_executions_v2 (id, unique_key)"
                         " VALUES ('t2', 'k')")
