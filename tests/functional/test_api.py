"""Every API function against real SQLite, PostgreSQL and MariaDB.

The tests move databases a few revisions, and whole upgrades to head;
the quick subset runs them on SQLite, CI on the servers too (``slow``,
as every server test but the smoke tests: tests/conftest.py). Nothing
here hardcodes the head: it is read from the migrations.
"""
from __future__ import annotations

import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa
from taskflow import task

from mistral_db_flows import api
from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import migration
from mistral_db_flows import plugins
from mistral_db_flows import results
from mistral_db_flows import revisions
from tests import migrate_util

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRAPH = revisions.graph()
HEAD = GRAPH.heads[0]
ORDER = GRAPH.order

# Whole upgrades: quick on SQLite, slow on the servers.
HEAD_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql",
                 marks=[pytest.mark.slow, pytest.mark.postgresql]),
    pytest.param("mysql", id="mysql",
                 marks=[pytest.mark.slow, pytest.mark.mysql]),
]


def settings(url: str, **kwargs) -> conf.Settings:
    return conf.Settings(database_url=url, **kwargs)


def version(url: str) -> list[str]:
    """alembic_version read through SQLAlchemy, not the code under test."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return []
            return sorted(r[0] for r in conn.execute(
                sa.text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def tables(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return sorted(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def json_ready(result) -> dict:
    """A result survives a JSON round trip (for --format json)."""
    doc = result.to_dict()
    assert json.loads(json.dumps(doc)) == doc
    return doc


def sqlite_path(url: str) -> str:
    return sa.engine.make_url(url).database


# -- reading ---------------------------------------------------------------

def test_history_branches_and_check_need_no_database():
    """The graph commands answer from the revision files alone."""
    history = api.history()
    assert [info.id for info in history] == list(reversed(ORDER))
    assert history[0].is_head and history[0].id == HEAD
    assert history[-1].line().startswith("<base> -> %s, " % ORDER[0])
    assert history[0].line().startswith("%s -> %s (head), "
                                        % (ORDER[-2], HEAD))
    assert all(info.doc for info in history)
    assert api.branches() == []
    check = api.check_migration()
    assert (check.head, check.base, check.revisions) == (
        HEAD, ORDER[0], len(ORDER))
    json_ready(check)
    json.dumps([info.to_dict() for info in history])


def test_current_and_status_of_an_empty_database(db_url):
    """An empty database has no revision and needs the whole chain."""
    current = api.current(settings(db_url))
    assert (current.revisions, current.head, current.at_head) == (
        [], HEAD, False)
    assert current.lines() == []
    status = api.status(settings(db_url))
    assert (status.current, status.head) == (None, HEAD)
    assert status.pending == ORDER
    assert status.upgrade_needed and not status.at_head
    assert json_ready(status)["upgrade_needed"] is True
    if db_url.startswith("sqlite"):
        assert not os.path.exists(sqlite_path(db_url)), \
            "reading must not create the SQLite file"


def test_current_of_a_missing_sqlite_file_creates_nothing(tmp_path):
    """The default database does not appear just because we looked."""
    url = "sqlite:///%s" % (tmp_path / "mistral.sqlite")
    assert api.current(settings(url)).revisions == []
    assert api.status(settings(url)).pending == ORDER
    assert os.listdir(tmp_path) == []


def test_reading_commands_import_nothing_heavy(tmp_path):
    """current and status answer without SQLAlchemy, Alembic, TaskFlow."""
    url = "sqlite:///%s" % (tmp_path / "light.sqlite")
    api.upgrade(settings(url), "+1")
    code = (
        "import sys\n"
        "from mistral_db_flows import api, conf\n"
        "s = conf.Settings(database_url=%r)\n"
        "assert api.current(s).revisions == [%r]\n"
        "assert api.status(s).current == %r\n"
        "api.history(); api.branches(); api.check_migration()\n"
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'taskflow')\n"
        "             if m in sys.modules))\n" % (url, ORDER[0], ORDER[0]))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- upgrade -----------------------------------------------------------------

def test_upgrade_step_by_step(db_url):
    """+N, --delta and an id each move exactly as far as asked."""
    s = settings(db_url)
    run = api.upgrade(s, "+1")
    assert (run.operation, run.state) == ("upgrade", "upgraded")
    assert (run.start_revision, run.end_revision) == (None, ORDER[0])
    assert [step.name for step in run.steps] == [
        "backup", "check_branches", "migrate_%s" % ORDER[0], "verify"]
    assert all(step.state == "done" for step in run.steps)
    # The steps revert themselves: no dump by default.
    assert run.backup is None
    json_ready(run)

    run = api.upgrade(s, delta=2)
    assert run.end_revision == ORDER[2]
    assert [st.name for st in run.steps if st.name.startswith("migrate")] \
        == ["migrate_%s" % r for r in ORDER[1:3]]

    run = api.upgrade(s, ORDER[4])
    assert (run.start_revision, run.end_revision) == (ORDER[2], ORDER[4])
    assert version(db_url) == [ORDER[4]]
    assert api.current(s).lines() == [ORDER[4]]
    assert api.status(s).pending == ORDER[5:]


def test_upgrade_to_where_the_database_is_changes_nothing(db_url):
    """The same target twice: the second run is "unchanged", no flow."""
    s = settings(db_url)
    api.upgrade(s, ORDER[1])
    run = api.upgrade(s, ORDER[1])
    assert run.state == "unchanged" and run.steps == []
    assert (run.start_revision, run.end_revision) == (ORDER[1], ORDER[1])


BAD_UPGRADES = [
    ({"target": None}, exceptions.BadTarget),
    ({"target": "999"}, exceptions.UnknownRevision),
    ({"target": ORDER[0]}, exceptions.BadTarget),
    ({"target": "-1"}, exceptions.BadTarget),
    ({"target": "+%d" % len(ORDER)}, exceptions.BadTarget),
    ({"target": "%s:%s" % (ORDER[0], ORDER[3])}, exceptions.BadTarget),
    ({"delta": 0}, exceptions.BadTarget),
    ({"delta": -2}, exceptions.BadTarget),
    ({"target": "head", "delta": 1}, exceptions.BadTarget),
]


def test_bad_upgrade_leaves_the_database_alone(db_url):
    """Each bad target is refused and the database stays where it was."""
    s = settings(db_url)
    api.upgrade(s, ORDER[1])
    before = (version(db_url), tables(db_url))
    for kwargs, error in BAD_UPGRADES:
        with pytest.raises(error):
            api.upgrade(s, **kwargs)
        assert (version(db_url), tables(db_url)) == before, kwargs


def test_database_stamped_with_an_unknown_revision(db_url):
    """current, status and upgrade name the unknown stamped revision."""
    migrate_util.execute_raw(db_url, [
        "CREATE TABLE alembic_version (version_num VARCHAR(32) "
        "NOT NULL PRIMARY KEY)",
        "INSERT INTO alembic_version (version_num) VALUES ('999')"])
    s = settings(db_url)
    for call in (api.current, api.status, lambda s: api.upgrade(s, "head"),
                 api.populate, api.verify):
        with pytest.raises(exceptions.UnknownRevision) as info:
            call(s)
        assert info.value.revision == "999"
        assert info.value.where == "database"
    assert version(db_url) == ["999"]
    assert tables(db_url) == ["alembic_version"]


@pytest.mark.parametrize("backend", HEAD_BACKENDS, indirect=True)
def test_upgrade_head_then_verify(db_url):
    """A whole upgrade ends at head, verified against the models."""
    s = settings(db_url)
    run = api.upgrade(s, "head")
    assert (run.state, run.end_revision, run.target) == (
        "upgraded", HEAD, HEAD)
    assert len([st for st in run.steps if st.name.startswith("migrate_")]) \
        == len(ORDER)
    assert run.steps[-1].detail["models"] == "matched"
    assert api.current(s).lines() == ["%s (head)" % HEAD]
    assert api.current(s).at_head
    assert api.status(s).at_head and api.status(s).pending == []
    assert api.upgrade(s, "head").state == "unchanged"

    run = api.verify(s)
    assert (run.operation, run.state) == ("verify", "verified")
    assert [step.name for step in run.steps] == ["verify"]
    json_ready(run)


def test_verify_finds_a_schema_that_drifted(tmp_path):
    """A table dropped by hand at head fails verification, naming it."""
    url = "sqlite:///%s" % (tmp_path / "drift.sqlite")
    s = settings(url)
    api.upgrade(s, "head")
    migrate_util.execute_raw(url, ["DROP TABLE named_locks"])
    with pytest.raises(exceptions.StepFailed) as info:
        api.verify(s)
    assert info.value.step == "verify"
    assert isinstance(info.value.cause, exceptions.VerifyFailed)
    assert "named_locks" in str(info.value)


def test_verify_off_head_fails(db_url):
    """verify wants the database at head; a step failure says so."""
    s = settings(db_url)
    api.upgrade(s, "+1")
    with pytest.raises(exceptions.StepFailed) as info:
        api.verify(s)
    err = info.value
    assert err.step == "verify" and err.exit_code == 7
    assert isinstance(err.cause, exceptions.VerifyFailed)
    assert err.run.state == "failed"
    assert [(st.name, st.state) for st in err.run.steps] == [
        ("verify", "failed")]
    json_ready(err.run)


def test_migrate_steps_are_idempotent(db_url):
    """A step whose revision is already applied does nothing."""
    s = settings(db_url, tasks={"upgrade": ["migrate"]})
    flow = api.upgrade_flow(s, ORDER[1])  # planned from empty
    api.upgrade(s, ORDER[2])              # the database moves on
    run = api.run_flow(flow, s)
    assert [(st.name, st.detail["applied"]) for st in run.steps] == [
        ("migrate_%s" % ORDER[0], False), ("migrate_%s" % ORDER[1], False)]
    assert run.state == "unchanged"
    assert version(db_url) == [ORDER[2]]


class Boom(task.Task):
    def execute(self):
        raise RuntimeError("boom in the middle")


def test_a_failing_step_is_reported_with_its_run(db_url, monkeypatch):
    """StepFailed names the step and carries the cause and the run."""
    real_load = plugins.load

    def load(names, *args, **kwargs):
        extra = [n for n in names if n == "boom"]
        loaded = dict(real_load([n for n in names if n != "boom"]))
        loaded.update({n: (lambda ctx: [Boom("boom")]) for n in extra})
        return [(n, loaded[n]) for n in names]

    monkeypatch.setattr(plugins, "load", load)
    s = settings(db_url, tasks={"upgrade": [
        "backup", "check_branches", "migrate", "boom", "verify"]})
    with pytest.raises(exceptions.StepFailed) as info:
        api.upgrade(s, "+1")
    err = info.value
    assert err.step == "boom"
    assert isinstance(err.cause, RuntimeError)
    # A new SQLite file is removed; elsewhere the steps revert
    # themselves.
    assert str(err) in (
        "step boom failed: boom in the middle; the database file it "
        "created was removed",
        "step boom failed: boom in the middle; each step undid its own "
        "change: the database is as before (at base)")
    assert err.run.state == "reverted"
    states = {st.name: st.state for st in err.run.steps}
    assert states == {"backup": "reverted", "check_branches": "reverted",
                      "migrate_%s" % ORDER[0]: "reverted",
                      "boom": "failed", "verify": "pending"}
    json_ready(err.run)


# -- stamp -------------------------------------------------------------------

def test_stamp_moves_only_the_pointer(db_url):
    """stamp writes alembic_version and touches no other table."""
    s = settings(db_url)
    run = api.stamp(s, ORDER[2])
    assert (run.operation, run.state, run.end_revision) == (
        "stamp", "stamped", ORDER[2])
    assert [st.name for st in run.steps] == [
        "backup", "check_branches", "stamp", "verify"]
    assert version(db_url) == [ORDER[2]]
    assert tables(db_url) == ["alembic_version"]
    assert api.stamp(s, ORDER[2]).state == "unchanged"
    assert api.stamp(s, "head").end_revision == HEAD
    assert api.current(s).at_head
    assert api.stamp(s, ORDER[0]).end_revision == ORDER[0]
    assert api.stamp(s, "base").end_revision is None
    assert version(db_url) == []
    json_ready(run)


def test_bad_stamp_leaves_the_database_alone(db_url):
    """Unlike upstream, stamp without a revision empties nothing."""
    s = settings(db_url)
    api.stamp(s, ORDER[3])
    for revision, error in ((None, exceptions.BadTarget),
                            ("", exceptions.BadTarget),
                            ("999", exceptions.UnknownRevision),
                            ("%s:%s" % (ORDER[0], ORDER[1]),
                             exceptions.BadTarget)):
        with pytest.raises(error):
            api.stamp(s, revision)
        assert version(db_url) == [ORDER[3]], revision


# -- populate ----------------------------------------------------------------

def test_populate_flows_run(db_url):
    """populate and populate_actions are guarded flows ending in verify."""
    s = settings(db_url)
    api.upgrade(s, "head")
    for call, name in ((api.populate, "populate"),
                       (api.populate_actions, "populate_actions")):
        run = call(s)
        assert (run.operation, run.state) == (name, "populated")
        assert [st.name for st in run.steps] == ["backup", name, "verify"]
        assert run.steps[-1].detail["rows"] == "in place"
        json_ready(run)
    assert version(db_url) == [ORDER[-1]]


def test_populate_below_head_is_refused_and_reverted(db_url):
    """populate on a database not at head fails, changing nothing."""
    s = settings(db_url)
    api.upgrade(s, "+1")
    with pytest.raises(exceptions.StepFailed) as info:
        api.populate(s)
    assert info.value.step == "populate"
    assert "upgrade head" in str(info.value)
    assert version(db_url) == [ORDER[0]]


# -- offline -----------------------------------------------------------------

UNREACHABLE = {
    "postgresql": "postgresql+psycopg2://mistral:s3cret@127.0.0.1:1/x",
    "mysql": "mysql+pymysql://mistral:s3cret@127.0.0.1:1/x",
}


@pytest.mark.parametrize("dialect", sorted(UNREACHABLE))
def test_offline_sql_never_connects(dialect):
    """--sql writes the script for a server that is not even there."""
    s = settings(UNREACHABLE[dialect])
    out = io.StringIO()
    run = api.upgrade(s, "head", sql=True, output=out)
    assert (run.state, run.start_revision, run.end_revision) == (
        "offline", None, HEAD)
    script = out.getvalue()
    assert "CREATE TABLE alembic_version" in script
    assert "-- Running upgrade  -> %s" % ORDER[0] in script
    assert "-- Running upgrade %s -> %s" % (ORDER[-2], HEAD) in script

    out = io.StringIO()
    run = api.upgrade(s, "%s:%s" % (ORDER[-3], HEAD), sql=True, output=out)
    assert (run.start_revision, run.end_revision) == (ORDER[-3], HEAD)
    ran = re.findall(r"-- Running upgrade (\S+) -> (\S+)", out.getvalue())
    assert ran == [(ORDER[-3], ORDER[-2]), (ORDER[-2], HEAD)]
    assert "CREATE TABLE alembic_version" not in out.getvalue()

    out = io.StringIO()
    run = api.stamp(s, "head", sql=True, output=out)
    assert run.state == "offline"
    assert "'%s'" % HEAD in out.getvalue()


def test_offline_bad_targets():
    """--sql refuses relative targets, deltas and backwards ranges."""
    s = settings(UNREACHABLE["postgresql"])
    for target, delta in (("+1", None), (None, 2), (":", None),
                          ("%s:%s" % (ORDER[3], ORDER[1]), None)):
        with pytest.raises(exceptions.BadTarget):
            api.upgrade(s, target, delta=delta, sql=True,
                        output=io.StringIO())
    with pytest.raises(exceptions.UnknownRevision):
        api.upgrade(s, "abc:def", sql=True, output=io.StringIO())


# -- connection errors -------------------------------------------------------

@pytest.mark.parametrize("url", [
    "not a url at all",
    "nosuchdb://mistral:s3cret@127.0.0.1/mistral",
    "postgresql+nosuchdriver://mistral:s3cret@127.0.0.1/mistral",
])
def test_bad_urls(url):
    """A URL we cannot use is BadUrl, without its password."""
    for call in (api.current, lambda s: api.upgrade(s, "head")):
        with pytest.raises(exceptions.BadUrl) as info:
            call(settings(url))
        assert "s3cret" not in str(info.value)
        assert info.value.exit_code == 2


@pytest.mark.parametrize("url", [
    UNREACHABLE["postgresql"],
    UNREACHABLE["mysql"],
    # An option only SQLAlchemy understands: the SQLAlchemy path.
    UNREACHABLE["postgresql"] + "?connect_timeout=5",
    UNREACHABLE["mysql"] + "?connect_timeout=5",
])
def test_unreachable_server(url):
    """No server there: DatabaseUnreachable, the password hidden."""
    for call in (api.current, api.status,
                 lambda s: api.upgrade(s, "head"),
                 lambda s: api.stamp(s, "head")):
        with pytest.raises(exceptions.DatabaseUnreachable) as info:
            call(settings(url))
        assert "s3cret" not in str(info.value)
        assert "***" in str(info.value)
        assert info.value.exit_code == 3


def test_unusable_sqlite_files(tmp_path):
    """A missing folder or a file that is no database: clear errors."""
    not_db = tmp_path / "notes.txt"
    not_db.write_text("not a database")
    for url in ("sqlite:///%s" % not_db,
                "sqlite:///%s" % (tmp_path / "no" / "mistral.sqlite")):
        for call in (api.current, lambda s: api.upgrade(s, "head")):
            with pytest.raises(exceptions.DatabaseUnreachable):
                call(settings(url))
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]
    assert not_db.read_text() == "not a database"


@pytest.mark.mysql
def test_wrong_password(make_db):
    """Credentials refused: DatabaseUnreachable, the password hidden."""
    url = sa.engine.make_url(make_db("mysql")).set(
        password="not-the-password-42")
    text = url.render_as_string(hide_password=False)
    with pytest.raises(exceptions.DatabaseUnreachable) as info:
        api.current(settings(text))
    assert "not-the-password-42" not in str(info.value)
    assert "denied" in str(info.value).lower()


def test_url_variants_read_the_same_database(make_db, backend):
    """Without a driver, or with options only SQLAlchemy knows, the
    same database is read and upgraded (fast path and SQLAlchemy path).
    """
    url = make_db(backend)
    api.upgrade(settings(url), "+1")
    plain = re.sub(r"^(\w+)\+\w+://", r"\1://", url)
    option = "timeout=5" if backend == "sqlite" else "connect_timeout=5"
    for variant in (plain, url + "?" + option):
        assert api.current(settings(variant)).revisions == [ORDER[0]]
    assert api.upgrade(settings(plain), "+1").end_revision == ORDER[1]
    assert api.current(settings(url + "?" + option)).revisions == [
        ORDER[1]]


# -- revision ----------------------------------------------------------------

@pytest.fixture
def source_tree(tmp_path, monkeypatch):
    """A copy of the migrations in a fake source checkout."""
    root = tmp_path / "checkout"
    shutil.copytree(revisions.script_location(), root / "migrations",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "setup.cfg").write_text("[metadata]\nname = x\n")
    location = str(root / "migrations")
    monkeypatch.setattr(revisions, "script_location", lambda: location)
    yield root
    migration.clear_caches()


def test_revision_writes_the_next_number(source_tree, tmp_path):
    """revision -m: head + 1, zero-padded, on top of the head."""
    s = settings("sqlite:///%s" % (tmp_path / "unused.sqlite"))
    new = api.revision(s, "add a widget table")
    expected = "%0*d" % (len(HEAD), int(HEAD) + 1)
    assert (new.revision, new.down_revision) == (expected, HEAD)
    assert os.path.dirname(new.path) == str(source_tree / "migrations"
                                            / "versions")
    assert os.path.basename(new.path).startswith(expected + "_")
    graph = revisions.graph()
    assert graph.heads == [expected] and graph.sound
    assert graph.revisions[expected].doc == "add a widget table"
    json_ready(new)

    named = api.revision(s, "with my id", rev_id="custom_1")
    assert named.down_revision == expected
    assert revisions.graph().heads == ["custom_1"]
    with pytest.raises(exceptions.BadTarget):
        api.revision(s, "again", rev_id="custom_1")
    with pytest.raises(exceptions.BadTarget):
        api.revision(s, "needs an id")  # head is not a number any more
    with pytest.raises(exceptions.BadTarget):
        api.revision(s, "bad id", rev_id="no spaces")


def test_revision_refuses_installed_migrations(tmp_path, monkeypatch):
    """Without a source checkout around them, nothing is written."""
    site = tmp_path / "lib" / "site-packages" / "mistral_db_flows"
    shutil.copytree(revisions.script_location(), site / "migrations",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site.parent / "setup.cfg").write_text("")  # even then
    location = str(site / "migrations")
    monkeypatch.setattr(revisions, "script_location", lambda: location)
    before = sorted(os.listdir(site / "migrations" / "versions"))
    with pytest.raises(exceptions.ReadOnlyMigrations) as info:
        api.revision(settings("sqlite://"), "nope")
    assert info.value.exit_code == 2
    assert sorted(os.listdir(site / "migrations" / "versions")) == before
    migration.clear_caches()


def test_autogenerate_needs_a_database_at_head(source_tree, tmp_path):
    """--autogenerate compares models with a database at head."""
    url = "sqlite:///%s" % (tmp_path / "auto.sqlite")
    s = settings(url)
    api.upgrade(s, "+1")
    with pytest.raises(exceptions.BadTarget) as info:
        api.revision(s, "auto", autogenerate=True)
    assert "head" in str(info.value)


@pytest.mark.slow
def test_autogenerate_writes_a_revision(source_tree, tmp_path):
    """At head, autogenerate writes a revision file from the models."""
    url = "sqlite:///%s" % (tmp_path / "auto.sqlite")
    s = settings(url)
    api.upgrade(s, "head")
    new = api.revision(s, "auto", autogenerate=True)
    assert os.path.exists(new.path)
    assert revisions.graph().heads == [new.revision]


# -- embedding ---------------------------------------------------------------

def test_upgrade_flow_embeds_in_another_flow(tmp_path):
    """upgrade_flow is a plain linear flow another engine can run."""
    import taskflow.engines
    from taskflow.patterns import linear_flow

    url = "sqlite:///%s" % (tmp_path / "embedded.sqlite")
    s = settings(url)
    inner = api.upgrade_flow(s, ORDER[2])
    assert isinstance(inner, linear_flow.Flow)
    outer = linear_flow.Flow("outer")
    outer.add(inner)
    taskflow.engines.load(outer, engine="serial").run()
    assert version(url) == [ORDER[2]]
    # Built again, nothing is pending; running it again is harmless.
    again = api.upgrade_flow(s, ORDER[2])
    assert not [a for a, _ in again.iter_nodes()
                if a.name.startswith("migrate_")]
    assert api.run_flow(again, s).state == "unchanged"
    assert isinstance(api.stamp_flow(s, "head"), linear_flow.Flow)
    assert isinstance(api.populate_flow(s), linear_flow.Flow)


def test_embedding_example_runs(tmp_path):
    """docs/examples/embed_upgrade.py runs and upgrades to head."""
    example = ROOT / "docs" / "examples" / "embed_upgrade.py"
    done = subprocess.run([sys.executable, str(example), "mine.sqlite"],
                          cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "stopping the Mistral services (pretend)",
        "starting the Mistral services (pretend)",
        "database now at: %s (head)" % HEAD]


def test_docs_show_the_example_verbatim():
    """docs/api.md embeds the tested example, not a drifting copy."""
    example = (ROOT / "docs" / "examples" / "embed_upgrade.py").read_text()
    doc = (ROOT / "docs" / "api.md").read_text()
    assert example.strip() in doc


def test_results_are_plain_data():
    """Every result type converts to JSON-ready dicts."""
    run = results.Run("upgrade", "upgraded", None, HEAD,
                      [results.Step("verify", "done", 0.1, {"a": 1})])
    assert json_ready(run)["steps"][0]["detail"] == {"a": 1}
    assert results.Current([HEAD], HEAD, True).lines() == [
        "%s (head)" % HEAD]


def test_default_database_is_mistral_sqlite_in_cwd(tmp_path, monkeypatch):
    """With no settings at all, the API uses ./mistral.sqlite."""
    monkeypatch.chdir(tmp_path)
    assert api.upgrade(conf.Settings(), "+1").end_revision == ORDER[0]
    assert (tmp_path / "mistral.sqlite").exists()

