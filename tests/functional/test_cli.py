"""Every command end to end on SQLite, PostgreSQL and MariaDB.

Most tests call ``cli.main([...])`` in-process (fast, output captured);
a few run the installed console script in a subprocess, as operators do.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from mistral_db_flows import cli
from mistral_db_flows import migration
from mistral_db_flows import revisions
from tests import conftest

HEAD = "045"
SCRIPT = shutil.which("mistral-db-manage",
                      path=os.path.dirname(sys.executable)) or \
    shutil.which("mistral-db-manage")


@pytest.fixture
def conf_for(tmp_path):
    """Factory: a mistral.conf whose [database] connection is ``url``."""
    def write(url: str) -> str:
        path = tmp_path / ("mistral-%d.conf" % len(list(
            tmp_path.glob("mistral-*.conf"))))
        path.write_text("[database]\nconnection = %s\n" % url)
        return str(path)

    return write


@pytest.fixture
def mdm(capsys, db_url, conf_for):
    """Run ``mistral-db-manage --config-file <db> ARGS`` in-process."""
    conf = conf_for(db_url)

    def run(*argv: str, expect: int = 0) -> tuple[str, str]:
        code = cli.main(["--config-file", conf] + list(argv))
        out, err = capsys.readouterr()
        assert code == expect, (argv, code, out, err)
        assert "Traceback" not in err
        return out, err

    return run


# Servers slow: how the CLI resolves +1/--delta/head and prints current
# does not depend on the server (upstream's session was recorded on
# PostgreSQL; CI replays it there too).
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_upgrade_walk_like_upstream(mdm):
    """The reference session: 030, +1, --delta 2, head, head again.

    ``current`` prints exactly what upstream prints at each point, and
    upgrade/stamp keep stdout empty.
    """
    assert mdm("current")[0] == ""  # empty database: nothing, as upstream
    assert mdm("upgrade", "030")[0] == ""
    assert mdm("current")[0] == "030\n"
    assert mdm("upgrade", "+1")[0] == ""
    assert mdm("current")[0] == "031\n"
    assert mdm("upgrade", "--delta", "2")[0] == ""
    assert mdm("current")[0] == "033\n"
    assert mdm("upgrade", "head")[0] == ""
    assert mdm("current")[0] == "%s (head)\n" % HEAD
    out, err = mdm("upgrade", "head")
    assert out == "" and "unchanged" in err


@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_stamp_and_status(mdm):
    """stamp moves the pointer only; status exits 10 below head, 0 at it."""
    mdm("upgrade", "head")
    mdm("stamp", "030")
    assert mdm("current")[0] == "030\n"
    out, _ = mdm("status", expect=10)
    assert "current: 030" in out and "head: %s" % HEAD in out
    doc = json.loads(mdm("--format", "json", "status", expect=10)[0])
    assert doc["pending"][0] == "031" and doc["pending"][-1] == HEAD
    assert doc["upgrade_needed"] is True
    mdm("stamp", "head")
    assert mdm("current")[0] == "%s (head)\n" % HEAD
    assert json.loads(mdm("--format", "json", "status")[0])["pending"] == []


@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_status_names_the_database(db_url, conf_for, capsys):
    """status says which database it looked at, password hidden, in
    text and JSON."""
    from mistral_db_flows import urls

    parsed = urls.parse(db_url)
    url = db_url
    if parsed.backend == "postgresql":
        # A password the server never checks (trust), only to be hidden.
        url = dataclasses.replace(parsed, password="pw-s3cret").render(
            hide_password=False)
    conf = conf_for(url)
    cli.main(["--config-file", conf, "upgrade", "head"])
    capsys.readouterr()
    assert cli.main(["--config-file", conf, "status"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == "database: %s" % urls.masked(url)
    assert cli.main(["--config-file", conf, "--format", "json",
                     "status"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["database"] == urls.masked(url)
    assert "pw-s3cret" not in out + err


def test_status_of_a_missing_sqlite_file(tmp_path, conf_for, capsys,
                                         monkeypatch):
    """No config and no ./mistral.sqlite: status names the file it
    looked for and says there is no database there (not "upgrade
    needed"), and creates nothing."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["status"]) == 10
    out, _ = capsys.readouterr()
    path = str(tmp_path / "mistral.sqlite")
    assert out.splitlines()[0] == "database: sqlite:///%s" % path
    assert "no database at %s" % path in out
    assert "upgrade needed" not in out
    assert cli.main(["--format", "json", "status"]) == 10
    doc = json.loads(capsys.readouterr()[0])
    assert doc["missing_file"] == path and doc["current"] is None
    assert not os.path.exists(path)


@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_backups_lists_what_the_runs_took(mdm, db_url, tmp_path):
    """`backups` lists each backup with database, kind, size, date and
    path (text and JSON), newest first, and still answers when the
    database is down (it never connects)."""
    for target in ("030", "040", "head"):
        mdm("upgrade", target, "--backup", "full")
    # The first upgrade of SQLite created the file: nothing to copy.
    taken = 2 if db_url.startswith("sqlite") else 3
    out, _ = mdm("backups")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["DATABASE", "KIND", "SIZE", "CREATED"]
    assert len(lines) == 1 + taken
    doc = json.loads(mdm("--format", "json", "backups")[0])
    listed = doc["backups"]
    assert [b["kind"] for b in listed] == ["upgrade"] * taken
    assert listed[0]["created"] > listed[1]["created"]
    for item in listed:
        assert os.path.getsize(item["path"]) == item["size"]
        assert item["checksum"] is True
        assert item["path"] in out
    down = tmp_path / "down.conf"
    down.write_text("[database]\nconnection = postgresql+psycopg2://"
                    "u:pw@127.0.0.1:1/x\n")
    code = cli.main(["--config-file", str(down), "--format", "json",
                     "backups"])
    assert code == 0


# Servers slow: populate and verify on each server are checked in
# test_api (populate flows) and test_schema_history (verify ends every
# guarded upgrade).
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_populate_verify_check(mdm):
    """populate, populate_actions, verify and check_migration succeed."""
    mdm("upgrade", "head")
    for command in ("populate", "populate_actions", "verify"):
        out, err = mdm(command)
        # Progress lines first, the summary line last.
        assert out == "" and err.strip().splitlines()[-1].startswith(
            command + ": ")
    assert HEAD in mdm("check_migration")[0]


# Servers slow: the documents' shapes do not depend on the backend.
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_json_documents(mdm):
    """--format json: one parseable document with the documented keys."""
    run = json.loads(mdm("--format", "json", "upgrade", "head")[0])
    assert {"operation", "state", "start_revision", "end_revision",
            "steps", "backup"} <= set(run)
    assert run["state"] == "upgraded" and run["end_revision"] == HEAD
    assert all({"name", "state", "duration"} <= set(s)
               for s in run["steps"])
    current = json.loads(mdm("--format", "json", "current")[0])
    assert current == {"revisions": [HEAD], "head": HEAD, "at_head": True}
    status = json.loads(mdm("--format", "json", "status")[0])
    assert {"current", "head", "pending", "interrupted",
            "upgrade_needed"} <= set(status)
    history = json.loads(mdm("--format", "json", "history")[0])
    assert {"id", "down_revision", "is_head", "doc"} <= set(
        history["revisions"][0])
    assert json.loads(mdm("--format", "json", "branches")[0]) == {
        "revisions": []}
    check = json.loads(mdm("--format", "json", "check_migration")[0])
    assert check["head"] == HEAD
    for command in ("populate", "populate_actions", "verify"):
        assert json.loads(mdm("--format", "json", command)[0])[
            "operation"] == command


def test_history_and_branches(mdm):
    """history: newest first in upstream's format; branches: nothing."""
    lines = mdm("history")[0].splitlines()
    assert lines[0].startswith("044 -> 045 (head), ")
    assert lines[-1].startswith("<base> -> 001, ")
    ids = [line.split(" -> ")[1].split(",")[0].split(" ")[0]
           for line in lines if " -> " in line]
    assert ids == ["%03d" % n for n in range(45, 0, -1)]
    assert mdm("branches") == ("", "")


# Servers slow: reading the revision on each server is checked in
# test_current_imports_no_taskflow_or_alembic.
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_current_verbose(mdm, db_url):
    """current --verbose (upstream refuses it) names parent and URL."""
    mdm("upgrade", "030")
    out, _ = mdm("current", "--verbose")
    assert "Rev: 030" in out and "Parent: 029" in out


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_offline_sql(capsys, conf_for, dialect):
    """upgrade START:END --sql and stamp --sql print SQL, touch nothing.

    The URL points at a port where nothing listens: offline mode must not
    connect at all.
    """
    url = "%s://u:pw@127.0.0.1:1/mistral" % {
        "postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}[dialect]
    conf = conf_for(url)
    assert cli.main(["--config-file", conf, "upgrade", "044:045",
                     "--sql"]) == 0
    out, err = capsys.readouterr()
    assert "CREATE INDEX" in out and "'045'" in out
    assert cli.main(["--config-file", conf, "stamp", "head", "--sql"]) == 0
    out, err = capsys.readouterr()
    assert "alembic_version" in out and "'045'" in out
    assert cli.main(["--config-file", conf, "--format", "json", "upgrade",
                     "044:045", "--sql"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["state"] == "offline" and "CREATE INDEX" in doc["sql"]


def _modules_after(argv: list[str]) -> set[str]:
    code = ("import sys, json\n"
            "from mistral_db_flows import cli\n"
            "rc = cli.main(%r)\n"
            "sys.stdout.flush()\n"
            "sys.stderr.write('\\nMODULES ' + json.dumps(sorted("
            "{m.split('.')[0] for m in sys.modules})) + '\\n')\n"
            "sys.exit(rc)\n" % (argv,))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stderr.splitlines() if x.startswith("MODULES ")]
    return set(json.loads(line[-1][len("MODULES "):]))


def test_current_imports_no_taskflow_or_alembic(db_url, conf_for):
    """`current` stays fast: TaskFlow, Alembic, SQLAlchemy never imported."""
    migration.upgrade(db_url, "head")
    modules = _modules_after(["--config-file", conf_for(db_url), "current"])
    assert not modules & {"taskflow", "alembic", "sqlalchemy"}


@pytest.mark.skipif(SCRIPT is None, reason="console script not installed")
def test_console_script_default_sqlite(tmp_path):
    """The installed script, no config: mistral.sqlite in the cwd."""
    env = dict(os.environ)
    env["HOME"] = str(tmp_path)  # no ~/.mistral/mistral.conf by chance

    def run(*argv: str, expect: int = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run([SCRIPT] + list(argv), cwd=tmp_path, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == expect, proc.stderr
        return proc

    run("upgrade", "head")
    assert pathlib.Path(tmp_path, "mistral.sqlite").exists()
    assert run("current").stdout == "%s (head)\n" % HEAD
    doc = json.loads(run("--format", "json", "status").stdout)
    assert doc["upgrade_needed"] is False
    proc = run("upgrade", expect=2)
    assert proc.stderr.count("\n") == 1
    assert "You must provide a revision or relative delta" in proc.stderr


@pytest.fixture
def source_tree(tmp_path, monkeypatch):
    """A writable copy of the migrations, as in a source checkout."""
    root = pathlib.Path(revisions.script_location()).parent
    src = tmp_path / "src"
    shutil.copytree(revisions.script_location(), src / "migrations",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "setup.cfg", src / "setup.cfg")
    monkeypatch.setattr(revisions, "script_location",
                        lambda: str(src / "migrations"))
    yield src / "migrations" / "versions"
    migration.clear_caches()


def test_revision_writes_into_the_source_tree(mdm, source_tree):
    """revision -m writes 046 on top of head; a taken --rev-id is refused."""
    out, err = mdm("revision", "-m", "add a thing")
    path = pathlib.Path(out.strip())
    assert path.parent == source_tree and path.name.startswith("046_")
    assert '"""add a thing' in path.read_text()
    out, err = mdm("revision", "-m", "again", "--rev-id", "046", expect=2)
    assert "046" in err and len(err.splitlines()) == 1


# Servers slow: autogenerate against each server is checked in
# test_models.test_autogenerate_finds_nothing_on_models_database.
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_revision_autogenerate_needs_head(mdm, source_tree):
    """--autogenerate compares with a database that must be at head."""
    mdm("upgrade", "030")
    out, err = mdm("revision", "-m", "auto", "--autogenerate", expect=2)
    assert "head" in err and len(err.splitlines()) == 1
    mdm("upgrade", "head")
    doc = json.loads(mdm("--format", "json", "revision", "-m", "auto",
                         "--autogenerate")[0])
    assert doc["revision"] == "046" and pathlib.Path(doc["path"]).exists()
