"""populate on real databases at head (SQLite, PostgreSQL, MariaDB).

Rows are compared with what upstream Mistral 23.0.0 writes
(tests/reference_data/populate). Workflow plugins are played by the
test plugin in tests/plugins/mdf_test_workflows, steered through
environment variables (see its docstring).
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from mistral_db_flows import dbapi
from mistral_db_flows import dbhandle
from mistral_db_flows import exceptions
from mistral_db_flows import migration
from mistral_db_flows import populate
from tests import conftest
from tests import dbs
from tests import reference

POPULATE_REF = reference.REFERENCE_DIR / "populate"
BENCH_STARTUP = os.path.join(os.path.dirname(__file__), "..", "..", "bench",
                             "bench_startup.py")
PROJECT = "<default-project>"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE")

WF_V1 = """---
version: '2.0'

%s:
  description: test workflow
  tasks:
    only:
      action: std.noop
"""


def _ref(name: str) -> dict:
    with open(POPULATE_REF / name) as f:
        return json.load(f)


@pytest.fixture(scope="module", params=conftest.SQLITE_QUICK)
def head_url(request, tmp_path_factory):
    """One database at our head per backend, shared by this module."""
    conftest._require(request.param)
    url = dbs.create(request.param, tmp_path_factory.mktemp("populate"))
    try:
        migration.upgrade(url, "head")
        yield url
    finally:
        dbs.drop(url)


@pytest.fixture
def engine(head_url):
    """The shared head database, emptied of what these tests touch."""
    eng = sa.create_engine(head_url, poolclass=sa.pool.NullPool)
    with eng.begin() as conn:
        for table in ("cron_triggers_v2", "event_triggers_v2",
                      "workflow_executions_v2", "workflow_definitions_v2",
                      "action_definitions_v2"):
            conn.execute(sa.text("DELETE FROM %s" % table))
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def plugin(monkeypatch):
    """The test plugin, installed and contributing nothing by default;
    no other definition plugin (e.g. mistral-extra) may be installed,
    the expected rows assume so."""
    from importlib import metadata

    names = {(group, ep.name) for group in (
        "mistral.preinstalled_workflows", "mistral_db_flows.definitions")
        for ep in metadata.entry_points(group=group)}
    ours = {("mistral.preinstalled_workflows", "mdf_test"),
            ("mistral_db_flows.definitions", "mdf_test"),
            ("mistral_db_flows.definitions", "mdf_test_broken")}
    message = None
    if not ours <= names:
        message = ("test plugin not installed: "
                   "pip install -e tests/plugins/mdf_test_workflows")
    elif names - ours:
        message = "other definition plugins installed: %s" % sorted(
            names - ours)
    if message:
        if conftest.IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    for var in ("MDF_TEST_WORKFLOWS_DIR", "MDF_TEST_DEFINITIONS_DIR",
                "MDF_TEST_BROKEN_PLUGIN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def wf_dir(tmp_path, monkeypatch):
    """Folder whose YAML files the mistral.preinstalled_workflows plugin
    returns."""
    folder = tmp_path / "preinstalled"
    folder.mkdir()
    monkeypatch.setenv("MDF_TEST_WORKFLOWS_DIR", str(folder))
    return folder


@pytest.fixture
def defs_dir(tmp_path, monkeypatch):
    """Folder with actions/ and workflows/ for our own namespace."""
    folder = tmp_path / "definitions"
    (folder / "actions").mkdir(parents=True)
    (folder / "workflows").mkdir()
    monkeypatch.setenv("MDF_TEST_DEFINITIONS_DIR", str(folder))
    return folder


def _write(path, text: str) -> None:
    # Bytes: the stored definition must be the file exactly.
    path.write_bytes(text.encode("utf-8"))


def _rows(eng, table: str, *, ids: bool = False) -> list[dict]:
    with eng.connect() as conn:
        result = conn.execute(sa.text("SELECT * FROM %s ORDER BY name"
                                      % table))
        rows = [dict(r._mapping) for r in result]
    for row in rows:
        if row.get("is_system") is not None:
            row["is_system"] = bool(row["is_system"])
        if not ids:
            for key in ("id", "created_at", "updated_at"):
                row.pop(key, None)
    return rows


class StatementLog:
    """Every SQL statement sent on an engine through SQLAlchemy, and every
    statement sent through a dbapi.Handle (what populate uses, whether
    given a URL, an Engine or a Connection)."""

    def __init__(self, eng, monkeypatch) -> None:
        self.statements: list[str] = []
        if eng is not None:
            sa.event.listen(eng, "before_cursor_execute", self._record)
        monkeypatch.setattr(dbhandle, "AFTER_EXECUTE",
                            [*dbhandle.AFTER_EXECUTE, self._observe])

    def _observe(self, handle, statement):
        self.statements.append(statement)

    def _record(self, conn, cursor, statement, params, context, many):
        self.statements.append(statement)

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements
                if s.lstrip().split(None, 1)[0].upper() in WRITES]


def _mistral_extra(folder) -> None:
    for row in _ref("upstream_populate_with_mistral_extra.json")[
            "workflow_definitions_v2"]:
        _write(folder / ("%s.yaml" % row["name"]), row["definition"])


def _insert(conn, table: str, **values) -> None:
    columns = ", ".join(values)
    binds = ", ".join(":%s" % k for k in values)
    conn.execute(sa.text("INSERT INTO %s (%s) VALUES (%s)"
                         % (table, columns, binds)), values)


def _cron_trigger(conn, workflow_id: str, name: str = "nightly") -> None:
    _insert(conn, "cron_triggers_v2", id=str(uuid.uuid4()), name=name,
            pattern="0 3 * * *", workflow_name="wf_referenced",
            workflow_id=workflow_id, project_id=PROJECT, scope="private",
            next_execution_time=datetime.datetime(2030, 1, 1),
            workflow_input="{}", workflow_input_hash="0" * 64,
            workflow_params="{}", workflow_params_hash="0" * 64)


def _wf_id(eng, name: str) -> str:
    with eng.connect() as conn:
        return conn.execute(sa.text(
            "SELECT id FROM workflow_definitions_v2 WHERE name = :n"),
            {"n": name}).scalar_one()


# Servers slow: test_mistral_extra_workflows_equal_upstream (every
# backend) compares the same std.wait_ssh row with upstream's there.
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_fresh_head_rows_equal_upstream(db_url):
    """On a fresh head database (our own migrations) populate leaves
    exactly upstream's rows: std.wait_ssh equal in every column but id and
    timestamps, its spec text byte-equal (key order, separators) and equal
    as JSON, and no workflow."""
    migration.upgrade(db_url, "head")
    eng = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        result = populate.populate(eng)
        expected = _ref("upstream_populate.json")
        actions = _rows(eng, "action_definitions_v2")
        assert actions == expected["action_definitions_v2"]
        ours, theirs = actions[0], expected["action_definitions_v2"][0]
        assert json.loads(ours["spec"]) == json.loads(theirs["spec"])
        assert ours["spec"] == theirs["spec"]
        assert ours["definition"] == theirs["definition"]
        assert _rows(eng, "workflow_definitions_v2") == []
        assert result.actions.added == ["std.wait_ssh"]
        with eng.connect() as conn:
            stamp = conn.execute(sa.text(
                "SELECT created_at FROM action_definitions_v2")).scalar()
        assert stamp is not None
    finally:
        eng.dispose()


def test_mistral_extra_workflows_equal_upstream(engine, wf_dir):
    """Workflows from a mistral.preinstalled_workflows plugin (here the
    two mistral-extra files, taken from the reference rows) are stored
    exactly as upstream stores them: is_system, checksum, spec, tags,
    project, scope, namespace."""
    _mistral_extra(wf_dir)
    result = populate.populate(engine)
    expected = _ref("upstream_populate_with_mistral_extra.json")
    assert _rows(engine, "action_definitions_v2") == \
        expected["action_definitions_v2"]
    assert _rows(engine, "workflow_definitions_v2") == \
        expected["workflow_definitions_v2"]
    for ours, theirs in zip(_rows(engine, "workflow_definitions_v2"),
                            expected["workflow_definitions_v2"]):
        assert ours["spec"] == theirs["spec"]
    assert result.workflows.added == ["create_instance", "delete_instance"]
    assert result.sources[1]["origin"] == \
        "mistral.preinstalled_workflows:mdf_test"
    json.dumps(result.to_dict())


def test_second_run_writes_nothing(engine, wf_dir, monkeypatch):
    """Run twice: the second run executes no INSERT/UPDATE/DELETE at all,
    every row (ids and timestamps included) is unchanged, and the report
    says everything is unchanged."""
    _mistral_extra(wf_dir)
    populate.populate(engine)
    before = (_rows(engine, "action_definitions_v2", ids=True),
              _rows(engine, "workflow_definitions_v2", ids=True))
    log = StatementLog(engine, monkeypatch)
    result = populate.populate(engine)
    assert log.writes == []
    assert len(log.statements) <= 3
    assert (_rows(engine, "action_definitions_v2", ids=True),
            _rows(engine, "workflow_definitions_v2", ids=True)) == before
    assert not result.changed
    assert result.actions.unchanged == ["std.wait_ssh"]
    assert result.workflows.unchanged == ["create_instance",
                                          "delete_instance"]


def test_changed_definition_updates_in_place(engine, wf_dir):
    """A workflow whose file changed is updated in its row: same id,
    new definition, spec and checksum, updated_at set; a cron trigger
    pointing at it survives."""
    _write(wf_dir / "wf.yaml", WF_V1 % "wf_changing")
    populate.populate(engine)
    old_id = _wf_id(engine, "wf_changing")
    with engine.begin() as conn:
        _cron_trigger(conn, old_id)
    new_text = (WF_V1 % "wf_changing").replace("std.noop", "std.echo")
    _write(wf_dir / "wf.yaml", new_text)
    result = populate.populate(engine)
    assert result.workflows.updated == ["wf_changing"]
    (row,) = _rows(engine, "workflow_definitions_v2", ids=True)
    assert row["id"] == old_id
    assert row["definition"] == new_text
    assert "std.echo" in row["spec"]
    assert row["checksum"] != "" and row["updated_at"] is not None
    assert len(_rows(engine, "cron_triggers_v2")) == 1


def test_gone_workflow_removed_user_rows_untouched(engine, wf_dir):
    """A system workflow gone from every source is deleted; workflows and
    actions users created (other projects, is_system false) are left
    exactly as they were."""
    _write(wf_dir / "a.yaml", WF_V1 % "wf_stays")
    _write(wf_dir / "b.yaml", WF_V1 % "wf_goes")
    with engine.begin() as conn:
        _insert(conn, "workflow_definitions_v2", id=str(uuid.uuid4()),
                name="wf_goes", definition="user's", spec="{}",
                tags="[]", is_system=False, namespace="",
                project_id="tenant-1", scope="private")
        _insert(conn, "action_definitions_v2", id=str(uuid.uuid4()),
                name="my.action", definition="x", spec="{}", tags="[]",
                is_system=False, namespace="", project_id=PROJECT,
                scope="private", input="a")
    users_before = ([r for r in _rows(engine, "workflow_definitions_v2",
                                      ids=True) if not r["is_system"]],
                    _rows(engine, "action_definitions_v2", ids=True))
    populate.populate(engine)
    os.unlink(wf_dir / "b.yaml")
    result = populate.populate(engine, remove_missing=True)
    assert result.workflows.removed == ["wf_goes"]
    assert result.workflows.unchanged == ["wf_stays"]
    rows = _rows(engine, "workflow_definitions_v2", ids=True)
    assert [r["name"] for r in rows if r["is_system"]] == ["wf_stays"]
    assert [r for r in rows if not r["is_system"]] == users_before[0]
    actions = _rows(engine, "action_definitions_v2", ids=True)
    assert [a for a in actions if a["name"] == "my.action"] == \
        users_before[1]


def test_missing_workflow_kept_and_listed_by_default(engine, wf_dir,
                                                     monkeypatch):
    """Run from an environment that lacks the plugin providing a system
    workflow (Mistral's own venv has it), populate keeps the row, writes
    nothing for it, and names it as missing, with the reason, and the
    sources it did read."""
    _write(wf_dir / "a.yaml", WF_V1 % "wf_stays")
    _write(wf_dir / "b.yaml", WF_V1 % "create_instance")
    populate.populate(engine)
    before = _rows(engine, "workflow_definitions_v2", ids=True)
    os.unlink(wf_dir / "b.yaml")
    log = StatementLog(engine, monkeypatch)
    result = populate.populate(engine)
    assert log.writes == []
    assert result.workflows.removed == []
    assert result.workflows.missing == ["create_instance"]
    (kept,) = result.workflows.kept
    assert kept.name == "create_instance"
    assert "--remove-missing" in kept.reason
    assert _rows(engine, "workflow_definitions_v2", ids=True) == before
    doc = result.to_dict()
    assert doc["workflows"]["missing"] == ["create_instance"]
    assert "package" in doc["origins"]
    assert "mistral.preinstalled_workflows:mdf_test" in doc["origins"]
    # Asked, though it gave no file: named all the same.
    assert "mistral_db_flows.definitions:mdf_test" in doc["origins"]


def test_referenced_workflow_kept_with_warning(engine, wf_dir,
                                                monkeypatch):
    """A vanished system workflow that a cron trigger, an event trigger
    or an execution refers to is kept, and the report says why."""
    _write(wf_dir / "a.yaml", WF_V1 % "wf_referenced")
    populate.populate(engine)
    wf_id = _wf_id(engine, "wf_referenced")
    with engine.begin() as conn:
        _cron_trigger(conn, wf_id)
        _insert(conn, "event_triggers_v2", id=str(uuid.uuid4()),
                name="on-event", workflow_id=wf_id, exchange="ex",
                topic="t", event="e", project_id=PROJECT, scope="private")
        _insert(conn, "workflow_executions_v2", id=str(uuid.uuid4()),
                name="wf_referenced", workflow_name="wf_referenced",
                workflow_id=wf_id, state="SUCCESS", project_id=PROJECT)
    os.unlink(wf_dir / "a.yaml")
    log = StatementLog(engine, monkeypatch)
    result = populate.populate(engine, remove_missing=True)
    assert log.writes == []
    assert result.workflows.removed == []
    (kept,) = result.workflows.kept
    assert kept.name == "wf_referenced"
    for what in ("cron trigger", "event trigger", "workflow execution"):
        assert what in kept.reason
    assert result.warnings and "wf_referenced" in result.warnings[0]
    assert _wf_id(engine, "wf_referenced") == wf_id
    assert len(_rows(engine, "cron_triggers_v2")) == 1


def test_user_workflow_with_system_name_left_alone(engine, wf_dir):
    """A user workflow holding the name a plugin workflow wants (same
    project, namespace '') is not overwritten: the report warns."""
    _write(wf_dir / "a.yaml", WF_V1 % "clash")
    with engine.begin() as conn:
        _insert(conn, "workflow_definitions_v2", id=str(uuid.uuid4()),
                name="clash", definition="mine", spec="{}", tags="[]",
                is_system=False, namespace="", project_id=PROJECT,
                scope="private")
    before = _rows(engine, "workflow_definitions_v2", ids=True)
    result = populate.populate(engine)
    assert _rows(engine, "workflow_definitions_v2", ids=True) == before
    assert [k.name for k in result.workflows.kept] == ["clash"]


@pytest.mark.parametrize("bad, problem", [
    ("version: '2.0'\nwf:\n  tasks: [unclosed\n", "malformed YAML"),
    ("version: '2.0'\nwf:\n  description: no tasks\n",
     "missing required key 'tasks'"),
    ("wf:\n  tasks:\n    t: {action: std.noop}\n",
     "missing required key 'version'"),
])
def test_invalid_file_writes_nothing(engine, wf_dir, bad, problem,
                                     monkeypatch):
    """One bad file among good ones: PopulateError naming the file and
    the problem, no write statement, the database as it was."""
    _write(wf_dir / "a_good.yaml", WF_V1 % "wf_good")
    _write(wf_dir / "b_bad.yaml", bad)
    log = StatementLog(engine, monkeypatch)
    with pytest.raises(exceptions.PopulateError) as info:
        populate.populate(engine)
    assert info.value.path == str(wf_dir / "b_bad.yaml")
    assert problem in info.value.problem
    assert str(wf_dir / "b_bad.yaml") in str(info.value)
    assert log.statements == []
    assert _rows(engine, "action_definitions_v2") == []
    assert _rows(engine, "workflow_definitions_v2") == []


def test_duplicate_name_across_sources(engine, wf_dir, defs_dir):
    """The same workflow name from two plugins is refused, naming both
    files; nothing is written."""
    _write(wf_dir / "one.yaml", WF_V1 % "twice")
    _write(defs_dir / "workflows" / "two.yaml", WF_V1 % "twice")
    with pytest.raises(exceptions.DuplicateDefinition) as info:
        populate.populate(engine)
    assert info.value.name == "twice"
    assert {info.value.first, info.value.second} == {
        str(wf_dir / "one.yaml"), str(defs_dir / "workflows" / "two.yaml")}
    assert _rows(engine, "action_definitions_v2") == []


@pytest.mark.parametrize("mode", ["import", "call", "value"])
def test_broken_plugin_is_an_error(engine, monkeypatch, mode):
    """A definitions plugin that cannot be loaded, raises, or returns
    garbage stops populate (SourceError naming it); nothing written."""
    monkeypatch.setenv("MDF_TEST_BROKEN_PLUGIN", mode)
    with pytest.raises(exceptions.SourceError) as info:
        populate.populate(engine)
    assert info.value.entry_point == "mdf_test_broken"
    assert info.value.namespace == "mistral_db_flows.definitions"
    assert _rows(engine, "action_definitions_v2") == []


def test_own_namespace_adds_actions_and_workflows(engine, defs_dir):
    """Our mistral_db_flows.definitions namespace contributes ad-hoc
    actions (stored like std.wait_ssh) and system workflows."""
    _write(defs_dir / "actions" / "mine.yaml",
           "version: '2.0'\nmy.echo:\n  base: std.echo\n  input:\n"
           "    - text\n    - times: 2\n")
    _write(defs_dir / "workflows" / "mine.yaml", WF_V1 % "my_wf")
    result = populate.populate(engine)
    assert result.actions.added == ["std.wait_ssh", "my.echo"]
    assert result.workflows.added == ["my_wf"]
    actions = {a["name"]: a for a in _rows(engine, "action_definitions_v2")}
    assert actions["my.echo"]["input"] == "text, times=2"
    assert actions["my.echo"]["is_system"] is False
    (wf,) = _rows(engine, "workflow_definitions_v2")
    assert wf["is_system"] is True


def test_populate_actions_only_leaves_workflows(engine, wf_dir):
    """workflows=False (populate_actions) neither reads plugins' workflows
    nor removes system workflows whose source disappeared."""
    _write(wf_dir / "a.yaml", WF_V1 % "wf_x")
    populate.populate(engine)
    os.unlink(wf_dir / "a.yaml")
    result = populate.populate(engine, workflows=False)
    assert result.workflows.to_dict()["removed"] == []
    assert [r["name"] for r in _rows(engine, "workflow_definitions_v2")] \
        == ["wf_x"]


@pytest.mark.parametrize("via", ["engine", "url"])
def test_failure_while_writing_rolls_back(engine, head_url, wf_dir,
                                          monkeypatch, via):
    """A failure after the first write rolls the whole run back: all or
    nothing; a connection populate opened itself is closed."""
    from mistral_db_flows.populate import store

    _write(wf_dir / "a.yaml", WF_V1 % "wf_y")
    real_write = store.write
    calls = []

    def failing(conn, plan, delete):
        if plan.kind == "workflow":
            raise RuntimeError("disk full")
        real_write(conn, plan, delete)
        calls.append("wrote " + plan.kind)

    for method in ("rollback", "close"):
        def spy(handle, _real=getattr(dbapi.Handle, method), _name=method):
            calls.append(_name)
            return _real(handle)
        monkeypatch.setattr(dbapi.Handle, method, spy)
    monkeypatch.setattr(store, "write", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        populate.populate(head_url if via == "url" else engine)
    assert _rows(engine, "action_definitions_v2") == []
    # The engine's connection is the pool's: SQLAlchemy rolls it back.
    assert calls == (["wrote action", "rollback", "close"] if via == "url"
                     else ["wrote action"])


@pytest.mark.parametrize("via", ["url", "engine"])
def test_database_not_at_head(make_db, backend, via):
    """An empty database gives SchemaNotReady, not a driver traceback,
    whether populate opened the driver connection or SQLAlchemy lent
    it; a SQLite file populate is given is never created."""
    url = make_db(backend)
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with pytest.raises(exceptions.SchemaNotReady) as info:
            populate.populate(url if via == "url" else eng)
        assert "upgrade head" in str(info.value)
        with pytest.raises(exceptions.SchemaNotReady):
            populate.still_to_do(url if via == "url" else eng)
    finally:
        eng.dispose()
    if backend == "sqlite" and via == "url":
        assert not os.path.exists(sa.engine.make_url(url).database)


@pytest.fixture(scope="session")
def upstream_mdm() -> str:
    """Upstream's mistral-db-manage (mistral==23.0.0 in
    bench/.upstream-venv, created from PyPI when missing, ~1 min):
    a run of upstream itself, not a recording, is what this checks."""
    spec = importlib.util.spec_from_file_location("bench_startup",
                                                  BENCH_STARTUP)
    assert spec and spec.loader
    bench_startup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_startup)
    return str(bench_startup.ensure_upstream())


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", [
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=pytest.mark.mysql)])
def test_rows_written_by_upstream_are_unchanged(make_db, backend_name,
                                                upstream_mdm, tmp_path,
                                                monkeypatch):
    """After upstream's own upgrade and populate, ours finds the row
    already right and writes nothing."""
    url = make_db(backend_name)
    conf = tmp_path / "upstream.conf"
    conf.write_text("[database]\nconnection = %s\n" % url)
    for command in ("upgrade head", "populate"):
        subprocess.run([upstream_mdm, "--config-file", str(conf)]
                       + command.split(), check=True, capture_output=True)
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        log = StatementLog(eng, monkeypatch)
        result = populate.populate(eng)
        assert result.actions.unchanged == ["std.wait_ssh"]
        assert not result.changed
        assert log.writes == []
        result = populate.populate(url)  # the plain driver's reading too
        assert not result.changed
        assert log.writes == []
        assert populate.still_to_do(url) == []
    finally:
        eng.dispose()


def test_caller_transaction_is_respected(engine):
    """Given a Connection already in a transaction, populate works inside
    it and leaves commit or rollback to the caller; given a Connection
    outside one, it commits its own."""
    with engine.connect() as conn:
        conn.begin()
        result = populate.populate(conn)
        assert result.actions.added == ["std.wait_ssh"]
        conn.rollback()
    assert _rows(engine, "action_definitions_v2") == []
    with engine.connect() as conn:
        populate.populate(conn)
    assert len(_rows(engine, "action_definitions_v2")) == 1


def _raw_timestamps(eng) -> list[tuple]:
    """created_at, updated_at as the driver returns them (no SQLAlchemy
    type processing: on SQLite the stored text)."""
    with eng.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT created_at, updated_at FROM action_definitions_v2")]


@pytest.mark.parametrize("via", ["url", "engine", "connection"])
def test_rows_and_second_run_by_every_way_in(engine, head_url, wf_dir,
                                             monkeypatch, via):
    """Given a URL (plain driver), an Engine or a Connection (its driver
    connection lent), populate writes upstream's rows with the same
    column types (is_system a bool, created_at naive UTC to the second,
    on SQLite the text SQLAlchemy's DateTime stores, updated_at NULL);
    the second run only reads (two SELECTs) and still_to_do() finds
    nothing left, without writing."""
    _mistral_extra(wf_dir)

    def run(function):
        if via == "url":
            return function(head_url)
        if via == "engine":
            return function(engine)
        with engine.connect() as conn:
            return function(conn)

    log = StatementLog(engine, monkeypatch)
    before = datetime.datetime.utcnow().replace(microsecond=0)
    result = run(populate.populate)
    assert result.actions.added == ["std.wait_ssh"]
    assert sorted(s.split(None, 1)[0] for s in log.writes) == \
        ["INSERT", "INSERT"]
    expected = _ref("upstream_populate_with_mistral_extra.json")
    for table in ("action_definitions_v2", "workflow_definitions_v2"):
        assert _rows(engine, table) == expected[table]
    ((created, updated),) = _raw_timestamps(engine)
    assert updated is None
    if engine.dialect.name == "sqlite":
        assert isinstance(created, str)
        assert created.endswith(".000000") and len(created) == 26
        created = datetime.datetime.fromisoformat(created)
    assert isinstance(created, datetime.datetime)
    assert created.tzinfo is None and created.microsecond == 0
    assert before <= created <= before + datetime.timedelta(minutes=5)
    with engine.connect() as conn:  # SQLAlchemy's DateTime reads it
        assert conn.execute(sa.select(
            sa.column("created_at", sa.DateTime)).select_from(
                sa.table("action_definitions_v2"))).scalar_one() == created

    rows = (_rows(engine, "action_definitions_v2", ids=True),
            _rows(engine, "workflow_definitions_v2", ids=True))
    log.statements.clear()
    again = run(populate.populate)
    assert not again.changed
    assert log.writes == [] and len(log.statements) == 2
    assert run(populate.still_to_do) == []
    assert log.writes == []
    assert (_rows(engine, "action_definitions_v2", ids=True),
            _rows(engine, "workflow_definitions_v2", ids=True)) == rows


def test_changes_through_a_url(engine, head_url, wf_dir):
    """Update in place (updated_at set, created_at kept) and delete of a
    vanished system workflow, through the plain driver connection."""
    _write(wf_dir / "a.yaml", WF_V1 % "wf_changing")
    _write(wf_dir / "b.yaml", WF_V1 % "wf_goes")
    populate.populate(head_url)
    (old,) = [r for r in _rows(engine, "workflow_definitions_v2", ids=True)
              if r["name"] == "wf_changing"]
    _write(wf_dir / "a.yaml",
           (WF_V1 % "wf_changing").replace("std.noop", "std.echo"))
    os.unlink(wf_dir / "b.yaml")
    assert populate.still_to_do(head_url) == [
        "workflow wf_changing differs from its definition"]
    result = populate.populate(head_url, remove_missing=True)
    assert result.workflows.updated == ["wf_changing"]
    assert result.workflows.removed == ["wf_goes"]
    (row,) = _rows(engine, "workflow_definitions_v2", ids=True)
    assert row["id"] == old["id"] and row["created_at"] == old["created_at"]
    assert "std.echo" in row["spec"] and row["is_system"] is True
    with engine.connect() as conn:  # typed: SQLite stores text
        updated_at = conn.execute(sa.select(
            sa.column("updated_at", sa.DateTime)).select_from(
                sa.table("workflow_definitions_v2"))).scalar_one()
    assert isinstance(updated_at, datetime.datetime)
    assert updated_at.microsecond == 0 and updated_at.tzinfo is None
    assert populate.still_to_do(head_url) == []


def test_still_to_do_in_caller_transaction(engine, head_url):
    """still_to_do on a Connection inside the caller's transaction sees
    its uncommitted rows and leaves the transaction to the caller."""
    with engine.connect() as conn:
        conn.begin()
        populate.populate(conn)
        assert populate.still_to_do(conn) == []
        assert conn.in_transaction()
        conn.rollback()
    assert populate.still_to_do(head_url) == \
        ["action std.wait_ssh is missing"]
    assert populate.still_to_do(engine) == ["action std.wait_ssh is missing"]
    assert _rows(engine, "action_definitions_v2") == []


def test_url_path_never_imports_sqlalchemy(tmp_path):
    """populate(url) and still_to_do(url) on a SQLite head database run on
    the plain driver: SQLAlchemy is never imported (it would cost about
    a tenth of a second)."""
    url = "sqlite:///%s" % (tmp_path / "head.sqlite")
    migration.upgrade(url, "head")
    code = ("import sys\n"
            "from mistral_db_flows import populate\n"
            "first = populate.populate(sys.argv[1])\n"
            "again = populate.populate(sys.argv[1])\n"
            "todo = populate.still_to_do(sys.argv[1])\n"
            "assert first.actions.added == ['std.wait_ssh'], first\n"
            "assert not again.changed and todo == [], (again, todo)\n"
            "loaded = sorted(m for m in sys.modules\n"
            "                if m.split('.')[0] == 'sqlalchemy')\n"
            "assert not loaded, loaded\n"
            "assert 'sqlalchemy' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code, url], check=True,
                   cwd=str(tmp_path))
