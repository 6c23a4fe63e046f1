"""Revisions 016..030: schema, re-runs, offline SQL and their data.

Only our own migrations run here (upstream is not installed in CI). Rows
are seeded before each data migration (020, 022, 029) and checked after;
022's expected data is upstream's own, recorded in
tests/reference_data/upstream_022_data.json;
the expected task types of 020 are upstream's, found by running
upstream's 020 on the same specs, except where upstream crashes (we say
'ACTION') or where a backend cannot tell (noted per case).
"""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from mistral_db_flows import migration
from tests import conftest
from tests import dbs
from tests import migrate_util
from tests import reference

# Statements with :name parameters, one transaction.
_execute = migrate_util.execute

REVISIONS = ["%03d" % n for n in range(16, 31)]

# (id, spec, expected type); a dict gives the type per backend.
SPECS = [
    ("action", '{"action": "std.noop", "name": "t1"}', "ACTION"),
    ("workflow", '{"workflow": "wf1", "name": "t2"}', "WORKFLOW"),
    ("workflow-null", '{"workflow": null}', "WORKFLOW"),
    ("workflow-empty", '{"workflow": ""}', "WORKFLOW"),
    ("nested", '{"input": {"workflow": "wf1"}}', "ACTION"),
    ("other-case", '{"Workflow": "wf1"}', "ACTION"),
    ("empty-object", "{}", "ACTION"),
    ("padded", '  {"workflow" : 1}  ', "WORKFLOW"),
    ("duplicate-key", '{"workflow": 1, "workflow": null}', "WORKFLOW"),
    # Upstream crashes on these; we set ACTION.
    ("null", None, "ACTION"),
    ("not-json", '{"workflow": ', "ACTION"),
    ("empty-text", "", "ACTION"),
    ("number", "5", "ACTION"),
    ("json-null", "null", "ACTION"),
    ("nan", '{"workflow": NaN}', "ACTION"),
    # Upstream tests membership on lists and strings; Mistral never
    # stores them as specs.
    ("list", '["workflow"]', "ACTION"),
    ("string", '"workflow"', "ACTION"),
    # Only PostgreSQL decodes escapes in keys; only PostgreSQL cannot
    # decode \u0000 (that spec falls back to ACTION, alone).
    ("escaped-key", '{"work\\u0066low": 1}',
     {"postgresql": "WORKFLOW", "mysql": "ACTION", "sqlite": "ACTION"}),
    ("nul-char", '{"workflow": "\\u0000"}',
     {"postgresql": "ACTION", "mysql": "WORKFLOW", "sqlite": "WORKFLOW"}),
]


def _select(url: str, statement: str) -> dict:
    """The first column mapped to the second."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(statement)).all())
    finally:
        engine.dispose()


def _previous(revision: str) -> str:
    return "%03d" % (int(revision) - 1)


@pytest.mark.slow
def test_each_revision_matches_reference(db_url):
    """Every step 016..030 from our own 015 gives the reference schema."""
    migration.upgrade(db_url, "015")
    failures = {}
    for revision in REVISIONS:
        migration.upgrade(db_url, revision)
        diff = migrate_util.schema_diff(db_url, revision)
        if diff:
            failures[revision] = diff
    assert failures == {}


def _upgrade_after_crash(url: str, revision: str, prefix) -> list | str:
    """Crash inside ``revision`` (after ``prefix``, or after all of it
    when None), upgrade again; the schema diff or the error."""
    if prefix is None:
        migration.upgrade(url, revision)
        migrate_util.set_version(url, _previous(revision))
    else:
        migrate_util.execute_raw(url, prefix)
    try:
        migration.upgrade(url, revision)
    except Exception as exc:  # the caller reports every case at once
        return repr(exc)
    return migrate_util.schema_diff(url, revision)


@pytest.mark.slow
def test_each_revision_completes_after_a_crash_at_any_statement(
        backend, tmp_path):
    """A crash after any statement of 016..030 is finished by upgrade.

    PostgreSQL and MariaDB: every proper prefix of the revision's offline
    statements runs by hand on a database at the previous revision, then
    ``upgrade``. Every backend (SQLite has no offline SQL): the whole
    revision ran but the version was not recorded.
    """
    failures = {}
    url = dbs.create(backend, tmp_path)
    try:
        migration.upgrade(url, "015")
        for revision in REVISIONS:
            failures[revision + " complete"] = _upgrade_after_crash(
                url, revision, None)
    finally:
        dbs.drop(url)
    if backend != "sqlite":
        for revision in REVISIONS:
            # Offline SQL needs only the dialect, not a live database.
            statements = migrate_util.offline_statements(
                url, _previous(revision), revision)
            for k in range(1, len(statements)):
                crashed = dbs.create(backend, tmp_path)
                try:
                    migration.upgrade(crashed, _previous(revision))
                    failures["%s after %d" % (revision, k)] = (
                        _upgrade_after_crash(crashed, revision,
                                             statements[:k]))
                finally:
                    dbs.drop(crashed)
    assert {k: v for k, v in failures.items() if v} == {}


# Slow: 015..030's offline SQL also runs through a client on both
# servers in test_offline_sql's head script.
@pytest.mark.parametrize("backend", conftest.server_params())
def test_offline_script_015_to_030_gives_reference(backend, make_db):
    """The offline script for 015:030, applied by hand, gives 030."""
    url = make_db(backend)
    migration.upgrade(url, "015")
    statements = migrate_util.offline_statements(url, "015", "030")
    migrate_util.execute_raw(url, statements)
    migrate_util.set_version(url, "030")
    assert migrate_util.schema_diff(url, "030") == []


def _seed_tasks(url: str) -> None:
    _execute(url, "INSERT INTO task_executions_v2 (id, spec) "
             "VALUES (:id, :spec)",
             params=[{"id": i, "spec": spec} for i, spec, _ in SPECS])


def _expected_types(backend: str) -> dict:
    return {i: (want[backend] if isinstance(want, dict) else want)
            for i, _, want in SPECS}


def test_020_sets_task_type_from_spec(db_url):
    """020 types each seeded task by its spec, never failing on a row."""
    backend = migrate_util.backend_of(db_url)
    migration.upgrade(db_url, "019")
    _seed_tasks(db_url)
    migration.upgrade(db_url, "020")
    got = _select(db_url, "SELECT id, type FROM task_executions_v2")
    assert got == _expected_types(backend)


def test_020_rerun_only_fills_missing_types(db_url):
    """A re-run of 020 types only rows left NULL and keeps the others."""
    backend = migrate_util.backend_of(db_url)
    migration.upgrade(db_url, "019")
    _seed_tasks(db_url)
    migration.upgrade(db_url, "020")
    # Simulate a crash: one row typed (deliberately "wrong", to see that
    # it is kept), one left NULL, version not recorded.
    _execute(db_url, "UPDATE task_executions_v2 SET type = 'WORKFLOW' "
                     "WHERE id = 'action'")
    _execute(db_url, "UPDATE task_executions_v2 SET type = NULL "
                     "WHERE id = 'workflow'")
    migrate_util.set_version(db_url, "019")
    migration.upgrade(db_url, "020")
    expected = dict(_expected_types(backend), action="WORKFLOW")
    assert _select(db_url,
                   "SELECT id, type FROM task_executions_v2") == expected


@pytest.mark.parametrize("backend", conftest.server_params())
def test_020_completes_after_a_crash_after_adding_the_column(backend,
                                                             make_db):
    """Only 020's ADD COLUMN ran (committed), then the upgrade: all typed."""
    url = make_db(backend)
    migration.upgrade(url, "019")
    _seed_tasks(url)
    statements = migrate_util.offline_statements(url, "019", "020")
    assert statements[0].startswith("ALTER TABLE task_executions_v2 ADD")
    migrate_util.execute_raw(url, statements[:1])
    migration.upgrade(url, "020")
    got = _select(url, "SELECT id, type FROM task_executions_v2")
    assert got == _expected_types(backend)


def test_019_leaves_key_empty_like_upstream(db_url):
    """019 replaces unique_key by an empty key column (upstream's data)."""
    migration.upgrade(db_url, "018")
    _execute(db_url,
             "INSERT INTO delayed_calls_v2 (id, target_method_name, "
             "execution_time, processing, unique_key) VALUES "
             "('d1', 'm', '2020-01-01 00:00:00', :p, 'k1')",
             params={"p": False})
    migration.upgrade(db_url, "019")
    table = sa.table("delayed_calls_v2", sa.column("id"), sa.column("key"))
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.id, table.c.key)).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("d1", None)]


def test_022_puts_definitions_and_executions_in_namespace_empty(db_url):
    """022 sets '' on definitions, workflow and task executions; an
    action execution without a workflow_name keeps NULL."""
    migration.upgrade(db_url, "021")
    _execute(db_url, "INSERT INTO workflow_definitions_v2 "
                     "(id, name, project_id) VALUES ('w1', 'wf', 'p')")
    for table in ("workflow_executions_v2", "task_executions_v2",
                  "action_executions_v2"):
        _execute(db_url, "INSERT INTO %s (id) VALUES ('%s-1')"
                 % (table, table[:2]))
    migration.upgrade(db_url, "022")
    assert _select(db_url, "SELECT id, namespace "
                           "FROM workflow_definitions_v2") == {"w1": ""}
    assert _select(db_url, "SELECT id, workflow_namespace "
                           "FROM workflow_executions_v2") == {"wo-1": ""}
    assert _select(db_url, "SELECT id, workflow_namespace "
                           "FROM task_executions_v2") == {"ta-1": ""}
    # Upstream leaves action executions without a workflow_name without
    # a namespace.
    assert _select(db_url, "SELECT id, workflow_namespace "
                           "FROM action_executions_v2") == {"ac-1": None}


def _upstream_022() -> dict:
    """Rows seeded at 021 and what upstream's 022 left, per backend."""
    with open(reference.REFERENCE_DIR / "upstream_022_data.json") as f:
        return json.load(f)


def _seed_022(url: str, seed: dict) -> None:
    for table, rows in seed.items():
        names = list(rows[0])
        _execute(url, "INSERT INTO %s (%s) VALUES (%s)" % (
            table, ", ".join(names), ", ".join(":" + n for n in names)),
            params=rows)


def _namespaces_022(url: str) -> dict:
    return {table: _select(url, "SELECT id, %s FROM %s" % (
        "namespace" if table == "workflow_definitions_v2"
        else "workflow_namespace", table))
        for table in _upstream_022()["seed"]}


def test_022_upstream_data_agrees_across_servers():
    """Upstream's 022 left the same values on PostgreSQL and MariaDB,
    so one expectation serves SQLite too."""
    after = _upstream_022()["after"]
    assert after["postgresql"] == after["mysql"]


def test_022_data_equals_upstreams(db_url):
    """Rows seeded at 021 get exactly upstream's namespaces from our 022:
    action executions '' only with a non-empty workflow_name."""
    backend = migrate_util.backend_of(db_url)
    data = _upstream_022()
    migration.upgrade(db_url, "021")
    _seed_022(db_url, data["seed"])
    migration.upgrade(db_url, "022")
    assert _namespaces_022(db_url) == data["after"].get(
        backend, data["after"]["postgresql"])


def test_022_rerun_fills_only_rows_left_null(db_url):
    """A re-run after a crash mid-data fills what is still NULL (as
    upstream would have) and keeps values already set."""
    backend = migrate_util.backend_of(db_url)
    data = _upstream_022()
    migration.upgrade(db_url, "021")
    _seed_022(db_url, data["seed"])
    migration.upgrade(db_url, "022")
    # Simulate a crash: nothing done yet for action executions, one
    # task execution already (deliberately "wrongly") set, version not
    # recorded.
    _execute(db_url, "UPDATE action_executions_v2 "
                     "SET workflow_namespace = NULL",
             "UPDATE task_executions_v2 SET workflow_namespace = 'kept' "
             "WHERE id = 'te-1'")
    migrate_util.set_version(db_url, "021")
    migration.upgrade(db_url, "022")
    expected = data["after"].get(backend, data["after"]["postgresql"])
    expected = dict(expected, task_executions_v2=dict(
        expected["task_executions_v2"], **{"te-1": "kept"}))
    assert _namespaces_022(db_url) == expected


def test_029_puts_workbooks_without_namespace_in_namespace_empty(db_url):
    """029 turns NULL workbook namespaces into '' and keeps the others."""
    migration.upgrade(db_url, "028")
    _execute(db_url, "INSERT INTO workbooks_v2 (id, name, namespace) "
                     "VALUES (:id, :name, :ns)",
             params=[{"id": "b1", "name": "wb1", "ns": None},
                     {"id": "b2", "name": "wb2", "ns": "team"},
                     {"id": "b3", "name": "wb3", "ns": ""}])
    migration.upgrade(db_url, "029")
    migrate_util.set_version(db_url, "028")
    migration.upgrade(db_url, "029")
    assert _select(db_url, "SELECT id, namespace FROM workbooks_v2") == {
        "b1": "", "b2": "team", "b3": ""}
