"""populate without a database: how rows are built, checked and planned.

Expected values marked "measured" were obtained by running upstream
Mistral 23.0.0's populate on definition files written for these tests
(see docs/populate.md).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mistral_db_flows import exceptions
from mistral_db_flows import populate
from mistral_db_flows.populate import plan
from mistral_db_flows.populate import report
from mistral_db_flows.populate import sources
from mistral_db_flows.populate import spec
from tests import reference

REF = reference.REFERENCE_DIR / "populate"


def _ref_rows(table: str) -> list[dict]:
    with open(REF / "upstream_populate_with_mistral_extra.json") as f:
        return json.load(f)[table]


def test_reference_rows_are_reproduced():
    """From the definition text alone we build every column of the rows
    upstream stored (std.wait_ssh, create_instance, delete_instance),
    spec text included."""
    for row in _ref_rows("action_definitions_v2"):
        (definition,) = spec.actions(row["definition"], "f.yaml")
        assert definition.columns == row
    for row in _ref_rows("workflow_definitions_v2"):
        (definition,) = spec.workflows(row["definition"], "f.yaml")
        assert definition.columns == row


def test_shipped_action_file_is_upstream_text():
    """The action file we ship is byte-equal to the definition upstream
    stores, so the stored row matches."""
    (source,) = sources.shipped([spec.ACTION])
    (row,) = _ref_rows("action_definitions_v2")
    assert source.read() == row["definition"]


def test_action_input_string_and_ascii_json():
    """Measured: input defaults are written name=<JSON>; spec JSON
    escapes non-ASCII; a file with two actions stores the whole file as
    each one's definition; no input/description gives NULL, no tags
    '[]'."""
    text = ("version: '2.0'\n"
            "a.one:\n  description: \"D\\u00e9faut\"\n  base: std.echo\n"
            "  input:\n    - a\n    - b: 5\n    - c: \"str\"\n"
            "    - d: null\n    - e: [1, 2]\n    - f: {x: 1}\n"
            "    - g: true\n    - h: 1.5\n  tags: [t1, t2]\n"
            "a.two:\n  base: std.noop\n")
    one, two = spec.actions(text, "f.yaml")
    assert one.columns["input"] == (
        'a, b=5, c="str", d=null, e=[1, 2], f={"x": 1}, g=true, h=1.5')
    assert one.columns["description"] == "D\u00e9faut"
    assert '"description": "D\\u00e9faut"' in one.columns["spec"]
    assert one.columns["tags"] == '["t1", "t2"]'
    assert one.columns["definition"] == two.columns["definition"] == text
    assert two.columns["input"] is None
    assert two.columns["description"] is None
    assert two.columns["tags"] == "[]"
    assert two.columns["spec"] == (
        '{"base": "std.noop", "name": "a.two", "version": "2.0"}')


def test_workflows_sharing_a_file():
    """Measured: with two workflows in one file each stores itself alone,
    dumped back to YAML under the file's version; tasks of a reverse
    workflow get type 'reverse'; the checksum is the MD5 of that text."""
    text = ("---\nversion: '2.0'\n\n"
            "exp_wf_one:\n  description: \"\\u03a9mega caf\\u00e9\"\n"
            "  tags: [a, b]\n  input:\n    - x\n    - y: 3\n"
            "  tasks:\n    t1:\n      action: std.noop\n\n"
            "exp_wf_two:\n  type: reverse\n  tasks:\n    t2:\n"
            "      action: std.noop\n      requires: [t3]\n"
            "    t3:\n      action: std.noop\n")
    one, two = spec.workflows(text, "f.yaml")
    assert one.columns["definition"] == (
        "version: '2.0'\nexp_wf_one:\n"
        "  description: \"\\u03A9mega caf\\xE9\"\n"
        "  tags:\n  - a\n  - b\n  input:\n  - x\n  - y: 3\n  tasks:\n"
        "    t1:\n      action: std.noop\n")
    assert one.columns["checksum"] == "e3477452bea42f5e95816c408c4070ec"
    assert one.columns["tags"] == '["a", "b"]'
    assert json.loads(one.columns["spec"])["tasks"]["t1"] == {
        "action": "std.noop", "type": "direct", "name": "t1",
        "version": "2.0"}
    assert two.columns["spec"] == (
        '{"type": "reverse", "tasks": {"t2": {"action": "std.noop", '
        '"requires": ["t3"], "type": "reverse", "name": "t2", '
        '"version": "2.0"}, "t3": {"action": "std.noop", "type": '
        '"reverse", "name": "t3", "version": "2.0"}}, '
        '"name": "exp_wf_two", "version": "2.0"}')
    assert two.columns["checksum"] == "99d3ed8441e996384891ae96e4ec47a3"


def test_numeric_version_is_stored_as_text():
    """Measured: ``version: 2.0`` (a number) gives "version": "2.0"."""
    (wf,) = spec.workflows(
        "version: 2.0\nwf:\n  tasks:\n    t:\n      action: std.noop\n",
        "f.yaml")
    assert json.loads(wf.columns["spec"])["version"] == "2.0"


@pytest.mark.parametrize("kind, text, problem", [
    ("workflow", "version: '2.0'\nwf: [unclosed\n",
     "malformed YAML"),
    ("workflow", "version: '2.0'\nwf:\n  tasks:\n    t: {}\n  t: x\n"
     "  tasks: {}\n", "duplicate key 'tasks'"),
    ("workflow", "- a list\n", "expected a mapping"),
    ("workflow", "wf:\n  tasks: {t: {}}\n",
     "missing required key 'version'"),
    ("workflow", "version: '1.0'\nwf:\n  tasks: {t: {}}\n",
     "unsupported version"),
    ("workflow", "version: '2.0'\n", "defines no workflow"),
    ("workflow", "version: '2.0'\nwf: {}\n",
     "workflow 'wf': missing required key 'tasks'"),
    ("workflow", "version: '2.0'\nwf:\n  tasks: {}\n",
     "'tasks' must be a non-empty mapping"),
    ("workflow", "version: '2.0'\nwf:\n  tasks:\n    t:\n",
     "task 't': expected a mapping, found nothing"),
    ("workflow", "version: '2.0'\nwf:\n  type: sideways\n  tasks: "
     "{t: {}}\n", "'type' must be one of direct, reverse"),
    ("workflow", "version: '2.0'\nwf:\n  tags: []\n  tasks: {t: {}}\n",
     "'tags' must be a non-empty list"),
    ("workflow", "version: '2.0'\nwf:\n  vars: {when: 2020-01-01}\n"
     "  tasks: {t: {}}\n", "wf.vars.when: YAML read"),
    ("workflow", "version: '2.0'\n5:\n  tasks: {t: {}}\n",
     "workflow name 5 is not a non-empty string"),
    ("action", "version: '2.0'\na.b:\n  input: [x]\n",
     "action 'a.b': missing required key 'base'"),
    ("action", "version: '2.0'\na.b:\n  base: std.noop\n  input: [x, x]\n",
     "'x' is listed twice"),
    ("action", "version: '2.0'\na.b:\n  base: std.noop\n"
     "  input: [{x: 1, y: 2}]\n", "must map one name to its default"),
    ("action", "version: '2.0'\na.b:\n  base: [std.noop]\n",
     "'base' must be a non-empty string"),
])
def test_invalid_definitions(kind, text, problem):
    """Each malformed or incomplete definition is refused with a message
    saying what is wrong."""
    parse = spec.actions if kind == "action" else spec.workflows
    with pytest.raises(spec.Invalid) as info:
        parse(text, "f.yaml")
    assert problem in str(info.value)


def test_yaml_error_gives_line_and_column():
    """A YAML syntax error is reported with its line and column."""
    with pytest.raises(spec.Invalid, match=r"line 4, column 4 .*line 3"):
        spec.workflows("version: '2.0'\nwf:\n  tasks: [a\n  b: c\n", "f")


def test_load_names_the_file(tmp_path):
    """load() turns a bad file into DefinitionError with path/problem
    attributes; an unreadable file too."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: '2.0'\nwf: {}\n")
    with pytest.raises(exceptions.DefinitionError) as info:
        populate.load([sources.Source(spec.WORKFLOW, str(bad))],
                      [spec.WORKFLOW])
    assert info.value.path == str(bad)
    assert "missing required key 'tasks'" in info.value.problem
    assert info.value.exit_code == 13
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(exceptions.DefinitionError) as info:
        populate.load([sources.Source(spec.WORKFLOW, missing, "x:y")],
                      [spec.WORKFLOW])
    assert info.value.path == missing and "cannot read" in str(info.value)


def test_load_refuses_duplicates_and_reads_a_file_once(tmp_path):
    """The same name in two files is a DuplicateDefinition naming both;
    the same file reached twice counts once."""
    wf = "version: '2.0'\n%s:\n  tasks:\n    t:\n      action: std.noop\n"
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(wf % "same")
    two.write_text(wf % "same")
    found = populate.load([sources.Source(spec.WORKFLOW, str(one))] * 2,
                          [spec.WORKFLOW])
    assert [d.name for d in found[spec.WORKFLOW]] == ["same"]
    with pytest.raises(exceptions.DuplicateDefinition) as info:
        populate.load([sources.Source(spec.WORKFLOW, str(one)),
                       sources.Source(spec.WORKFLOW, str(two))],
                      [spec.WORKFLOW])
    assert (info.value.first, info.value.second) == (str(one), str(two))
    assert info.value.path == str(two)


@pytest.mark.parametrize("value", ["one/path.yaml", 42, [1]])
def test_plugin_value_must_be_paths(value):
    """A plugin returning anything but a list of paths is a SourceError."""
    with pytest.raises(exceptions.SourceError):
        sources._paths(value, "ns", "ep")


def _definition(kind: str, name: str, **columns) -> spec.Definition:
    base = {"name": name, "namespace": "", "project_id": spec.PROJECT_ID,
            "definition": "d", "is_system": kind == spec.WORKFLOW}
    base.update(columns)
    return spec.Definition(kind, name, "f.yaml", base)


def _row(row_id: str, name: str, **columns) -> dict:
    row = {"id": row_id, "name": name, "namespace": "",
           "project_id": spec.PROJECT_ID, "definition": "d",
           "is_system": True}
    row.update(columns)
    return row


def test_plan_add_update_unchanged_gone():
    """Matching by (name, namespace, project): new names are added,
    changed rows updated by id, equal rows (MySQL's 1 for true
    included) unchanged, system workflows no source defines are gone."""
    wanted = [_definition(spec.WORKFLOW, "new"),
              _definition(spec.WORKFLOW, "changed", definition="v2"),
              _definition(spec.WORKFLOW, "same")]
    rows = [_row("1", "changed"), _row("2", "same", is_system=1),
            _row("3", "vanished"),
            _row("4", "users", is_system=False, project_id="p")]
    result = plan.make(spec.WORKFLOW, wanted, rows)
    assert [d.name for d in result.add] == ["new"]
    assert [(i, d.name) for i, d in result.update] == [("1", "changed")]
    assert result.changes.unchanged == ["same"]
    assert [r["id"] for r in result.gone] == ["3"]


def test_plan_keep_referenced_rows():
    """Gone rows something refers to are kept with the referrers named;
    the others are deleted and reported removed."""
    result = plan.make(spec.WORKFLOW, [], [_row("1", "a"), _row("2", "b")])
    delete = result.keep({"2": ["cron trigger"]}, remove_missing=True)
    assert delete == ["1"]
    assert result.changes.removed == ["a"]
    assert result.changes.kept[0].name == "b"
    assert "cron trigger" in result.changes.kept[0].reason
    assert result.changes.missing == ["a", "b"]


def test_plan_keeps_missing_rows_without_remove_missing():
    """By default no gone row is deleted: each is kept, listed as
    missing, with the option that would remove it in the reason."""
    result = plan.make(spec.WORKFLOW, [], [_row("1", "a"), _row("2", "b")])
    assert result.keep({}) == []
    assert result.changes.removed == []
    assert result.changes.missing == ["a", "b"]
    assert [k.name for k in result.changes.kept] == ["a", "b"]
    assert all("--remove-missing" in k.reason
               for k in result.changes.kept)


def test_plan_user_workflow_and_null_namespace():
    """A non-system workflow holding a wanted key is kept with a warning
    (never updated, never gone); an action row with a NULL namespace is
    matched and moved to ''; actions are never gone."""
    wf = plan.make(spec.WORKFLOW, [_definition(spec.WORKFLOW, "clash")],
                   [_row("1", "clash", is_system=False)])
    assert not wf.update and not wf.gone and not wf.add
    assert wf.changes.kept[0].reason == plan.USER_WORKFLOW
    actions = plan.make(
        spec.ACTION, [_definition(spec.ACTION, "std.x")],
        [_row("9", "std.x", namespace=None, is_system=False),
         _row("8", "std.other", is_system=False)])
    assert [(i, d.name) for i, d in actions.update] == [("9", "std.x")]
    assert actions.gone == []


def test_report_is_json_serialisable():
    """to_dict() survives json.dumps; warnings and summary cover kept."""
    result = report.PopulateReport()
    result.actions.added.append("std.wait_ssh")
    result.workflows.kept.append(report.Kept("wf", "still used"))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["changed"] is True
    assert data["workflows"]["kept"] == [{"name": "wf",
                                          "reason": "still used"}]
    assert result.warnings == ["workflow wf: still used"]
    assert "actions: 1 added" in result.summary()


def test_import_is_light():
    """Importing and validating pulls in neither SQLAlchemy nor yaql nor
    mistral-lib (a populate run given a URL does not need SQLAlchemy
    either: see test_url_path_never_imports_sqlalchemy)."""
    code = ("import sys\n"
            "from mistral_db_flows import populate\n"
            "populate.load(populate.collect(['action'], plugins=False),"
            " ['action'])\n"
            "bad = [m for m in ('sqlalchemy', 'yaql', 'mistral_lib',"
            " 'mistral') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


_ACTIONS_DDL = (
    "CREATE TABLE action_definitions_v2 (created_at DATETIME, "
    "updated_at DATETIME, scope VARCHAR(80), project_id VARCHAR(80), "
    "id VARCHAR(36) PRIMARY KEY, name VARCHAR(255), definition TEXT, "
    "spec TEXT, tags TEXT, description TEXT, input TEXT, "
    "action_class VARCHAR(200), attributes TEXT, is_system BOOLEAN, "
    "namespace VARCHAR(255), workbook_name VARCHAR(255))")


@pytest.fixture
def memory_handle():
    from mistral_db_flows import dbapi

    handle = dbapi.connect("sqlite://")
    yield handle
    handle.close()


def test_store_round_trip_on_plain_sqlite(memory_handle):
    """store on a bare sqlite3 connection: inserted rows read back equal
    to their definition (is_system 0 read as False, so nothing to
    update), timestamps stored as SQLAlchemy's DateTime text, updated_at
    NULL until an update sets it; an update keeps the id."""
    from mistral_db_flows.populate import store

    memory_handle.execute(_ACTIONS_DDL).close()
    (source,) = sources.shipped([spec.ACTION])
    (wanted,) = spec.actions(source.read(), source.path)
    first = plan.make(spec.ACTION, [wanted], [])
    store.write(memory_handle, first, [])
    (row,) = store.read(memory_handle, spec.ACTION, ["std.wait_ssh"])
    assert row["is_system"] is False
    assert {k: v for k, v in row.items() if k != "id"} == \
        dict(wanted.columns, workbook_name=None)
    again = plan.make(spec.ACTION, [wanted], [row])
    assert again.changes.unchanged == ["std.wait_ssh"] and not again.update
    ((created, updated, typ),) = memory_handle.rows(
        "SELECT created_at, updated_at, typeof(is_system) "
        "FROM action_definitions_v2")
    assert updated is None and typ == "integer"
    assert len(created) == 26 and created.endswith(".000000")
    changed = spec.Definition(spec.ACTION, wanted.name, wanted.path,
                              dict(wanted.columns, description="new"))
    store.write(memory_handle,
                plan.make(spec.ACTION, [changed], [row]), [])
    ((row_id, description, stamp),) = memory_handle.rows(
        "SELECT id, description, updated_at FROM action_definitions_v2")
    assert (row_id, description) == (row["id"], "new")
    assert len(stamp) == 26 and stamp.endswith(".000000")


def test_schema_errors_are_tight(memory_handle):
    """Only the driver's "no such table/column" errors become
    SchemaNotReady; other driver errors and any other exception pass
    through unchanged."""
    import sqlite3

    from mistral_db_flows.populate import store

    assert memory_handle.driver_errors() == (sqlite3.Error,)
    with pytest.raises(exceptions.SchemaNotReady) as info:
        store.read(memory_handle, spec.ACTION, ["std.wait_ssh"])
    assert "action_definitions_v2" in str(info.value)
    assert "no such table" in str(info.value)
    assert store.read(memory_handle, spec.ACTION, []) == []
    with pytest.raises(sqlite3.OperationalError, match="syntax"):
        with store._schema_errors(memory_handle, "t"):
            memory_handle.execute("SELEC 1")
    with pytest.raises(ValueError):
        with store._schema_errors(memory_handle, "t"):
            raise ValueError("table t does not exist")
