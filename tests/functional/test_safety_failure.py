"""A step that fails leaves the database exactly as before, or as it is.

The fault plugins (tests/plugins/mdf_fault) make one step of ``upgrade
head`` fail (before, inside or after its work) on a database with
seeded rows in every table:

* ``on_failure = revert`` (the default): exit code 7, the message names
  the step and says the backup was restored, and the database is
  identical to before: SQLite page for page (the header's change
  counters aside), PostgreSQL and MariaDB schema and every row of every
  table, ``alembic_version`` included;
* ``--on-failure stop`` and ``--no-backup``: the database is left as
  the failure left it, the run stays resumable, and running the command
  again (without the fault) finishes at head with every row.

Runs are in-process (``cli.main``), which is what the console script
runs; the kill tests use real processes.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests import dbs
from tests import migrate_util
from tests.functional import safety_util as su

HEAD = su.HEAD


@pytest.fixture(autouse=True)
def _fault_plugins():
    su.require_fault_plugins()


Fail = su.Case

FAILS = [
    Fail("009-before", "008", "before:migrate_009:fail", "migrate_009"),
    Fail("013-inside", "008", "inside:migrate_013:fail:20", "migrate_013"),
    Fail("020-inside", "019", "inside:migrate_020:fail:1", "migrate_020"),
    Fail("022-inside", "019", "inside:migrate_022:fail:6", "migrate_022"),
    Fail("030-after", "019", "after:migrate_030:fail", "migrate_030"),
    Fail("044-inside", "019", "inside:migrate_044:fail:3", "migrate_044"),
    Fail("verify-before", "019", "before:verify:fail", "verify"),
    Fail("verify-after", "019", "after:verify:fail", "verify"),
]
# The quick subset's failure-and-revert check on each backend (the
# server pairs are its smoke tests); the rest of the matrix is slow.
QUICK = {("sqlite", "022-inside"), ("postgresql", "022-inside"),
         ("mysql", "022-inside")}


def _snapshot(url: str) -> dict:
    snap = {"state": su.state(url)}
    if su.sqlite_path(url):
        snap["bytes"] = su.sqlite_bytes(url)
        snap["dump"] = su.iterdump(url)
    return snap


def _assert_identical(url: str, before: dict) -> None:
    after = _snapshot(url)
    assert su.state_diff(after["state"], before["state"]) == []
    if "bytes" in before:
        assert after["dump"] == before["dump"]
        assert after["bytes"] == before["bytes"], \
            "SQLite file differs beyond the header's change counters"


def _last_error(done: su.Done) -> str:
    lines = [line for line in done.err.splitlines()
             if line.startswith("mistral-db-manage: error:")]
    assert lines, done
    return lines[-1]


@pytest.mark.parametrize("backend,case", su.matrix(FAILS, QUICK))
def test_failure_restores_the_database_exactly(backend, case, make_db,
                                               tmp_path):
    """A failing step: exit 7 naming it, the backup restored, the
    database identical to before, no run left to resume."""
    url = make_db(backend)
    su.prepare(url, case.start)
    before = _snapshot(url)
    tool = su.Tool(url, tmp_path, backup="full")

    failed = tool.call("upgrade", "head", fault=case.fault)
    assert failed.code == su.EXIT_STEP_FAILED, failed
    message = _last_error(failed)
    assert "step %s failed: injected fault" % case.step in message
    assert "restored from the backup" in message
    run = failed.run
    assert run["state"] == "reverted"
    assert failed.steps()[case.step]["state"] == "failed"
    assert run["backup"] and run["backup"] in message
    assert os.path.exists(run["backup"])
    _assert_identical(url, before)

    status = tool.call("status")
    assert status.doc["interrupted"] is None
    assert status.doc["current"] == case.start


def test_failed_backup_changes_nothing_and_leaves_no_run(make_db,
                                                         tmp_path):
    """The backup step itself failing: its error, 'nothing was
    changed', no interrupted run (another target is not refused)."""
    url = make_db("sqlite")
    su.prepare(url, "008")
    before = _snapshot(url)
    tool = su.Tool(url, tmp_path)
    failed = tool.call("upgrade", "head", fault="after:backup:fail")
    assert failed.code == su.EXIT_STEP_FAILED, failed
    assert "step backup failed" in _last_error(failed)
    assert "nothing was changed" in _last_error(failed)
    _assert_identical(url, before)
    assert tool.call("status").doc["interrupted"] is None
    assert tool.call("upgrade", "030").code == 0


def test_failure_on_a_new_sqlite_file_removes_it(tmp_path):
    """'Before' was no file at all: the revert removes the file the run
    created (and its journal)."""
    url = "sqlite:///%s" % (tmp_path / "fresh.sqlite")
    tool = su.Tool(url, tmp_path)
    failed = tool.call("upgrade", "head", fault="inside:migrate_010:fail")
    assert failed.code == su.EXIT_STEP_FAILED, failed
    assert "file it created was removed" in _last_error(failed)
    assert failed.run["state"] == "reverted"
    # The lock file stays (it is the lock, not the database).
    assert [p for p in os.listdir(tmp_path)
            if p.startswith("fresh.sqlite")] == ["fresh.sqlite.lock"]


def _stop_params():
    return [pytest.param(b, marks=list(su.BACKEND_MARKS.get(b, ())) + (
        [] if b == "sqlite" else [pytest.mark.slow]), id=b)
        for b in dbs.BACKENDS]


@pytest.mark.parametrize("backend", _stop_params())
def test_stop_leaves_the_database_then_resumes(backend, make_db, tmp_path):
    """--on-failure stop: the database stays where the failure left it,
    status shows the stopped run, the same command finishes it; a later
    failure of the resumed run restores the state from before the
    first attempt (its backup is kept)."""
    url = make_db(backend)
    su.prepare(url, "019")
    before = _snapshot(url)
    tool = su.Tool(url, tmp_path, backup="full")

    stopped = tool.call("upgrade", "head", "--on-failure", "stop",
                        fault="inside:migrate_022:fail:6")
    assert stopped.code == su.EXIT_STEP_FAILED, stopped
    message = _last_error(stopped)
    assert "step migrate_022 failed" in message
    assert "left as it is (at 021)" in message
    assert stopped.run["state"] == "stopped"
    assert su.version(url) == "021"
    first_backup = stopped.run["backup"]
    assert first_backup and os.path.exists(first_backup)

    interrupted = tool.call("status").doc["interrupted"]
    assert interrupted["step"] == "migrate_022"
    assert interrupted["state"] == "stopped"

    # Resumed, and failing again at the very end (revert this time):
    # back to the database before the first attempt, not to 021.
    again = tool.call("upgrade", "head", fault="before:verify:fail")
    assert again.code == su.EXIT_STEP_FAILED, again
    assert again.run["state"] == "reverted"
    assert again.run["resumed"] is True
    assert again.run["backup"] == first_backup
    _assert_identical(url, before)


@pytest.mark.parametrize("backend", _stop_params())
def test_stopped_run_resumes_to_head(backend, make_db, tmp_path):
    """After a stop, the same command without the fault ends at head
    with the rows an uninterrupted upgrade gives."""
    url = make_db(backend)
    su.prepare(url, "019")
    tool = su.Tool(url, tmp_path)
    stopped = tool.call("upgrade", "head", "--on-failure", "stop",
                        fault="inside:migrate_022:fail:6")
    assert stopped.code == su.EXIT_STEP_FAILED, stopped
    done = tool.call("upgrade", "head")
    assert done.code == 0, done
    assert (done.doc["state"], done.doc["resumed"]) == ("upgraded", True)
    assert done.doc["start_revision"] == "019"
    assert migrate_util.schema_diff(url, HEAD) == []
    assert su.state_diff(su.state(url),
                         su.expected_head_state(backend, "019")) == []
    assert tool.call("status").code == 0


@pytest.mark.parametrize("backend", _stop_params())
def test_no_backup_stops_with_a_warning(backend, make_db, tmp_path):
    """--no-backup: a warning, no backup file, a failure stops (nothing
    to restore) and the same command resumes to head."""
    url = make_db(backend)
    su.prepare(url, "019")
    tool = su.Tool(url, tmp_path)
    stopped = tool.call("upgrade", "head", "--no-backup",
                        fault="inside:migrate_020:fail:1")
    assert stopped.code == su.EXIT_STEP_FAILED, stopped
    assert "warning" in stopped.err and "no backup" in stopped.err
    assert stopped.run["state"] == "stopped"
    assert stopped.run["backup"] is None
    assert "left as it is (at 019)" in _last_error(stopped)
    assert not (tool.state_dir / "backups").exists() or not list(
        (tool.state_dir / "backups").iterdir())

    done = tool.call("upgrade", "head", "--no-backup")
    assert done.code == 0, done
    assert done.doc["resumed"] is True
    assert su.state_diff(su.state(url),
                         su.expected_head_state(backend, "019")) == []


def test_backup_disabled_in_the_config_stops(make_db, tmp_path):
    """``[db_manage] backup = false`` behaves like --no-backup."""
    url = make_db("sqlite")
    su.prepare(url, "019")
    tool = su.Tool(url, tmp_path, backup=False)
    stopped = tool.call("upgrade", "head", fault="before:migrate_025:fail")
    assert stopped.code == su.EXIT_STEP_FAILED, stopped
    assert stopped.run["state"] == "stopped"
    assert su.version(url) == "024"
    assert "no backup" in stopped.err


# -- passwords -------------------------------------------------------------

@pytest.fixture
def password_url(request, make_db):
    """Factory: a fresh database reached by a user of its own whose
    password has characters URLs must quote; user dropped afterwards."""
    import urllib.parse
    import uuid

    import sqlalchemy as sa

    made = []

    def make(backend: str) -> tuple[str, str]:
        admin_url = make_db(backend)
        database = sa.engine.make_url(admin_url).database
        password = "s3cr@t/Pw-%s" % uuid.uuid4().hex[:10]
        user = dbs.add_user(backend, database, password=password,
                            owner=True)
        made.append((backend, user, admin_url))
        url = sa.engine.make_url(admin_url).set(
            username=user, password=password)
        rendered = url.render_as_string(hide_password=False)
        assert urllib.parse.quote(password, safe="") in rendered
        return rendered, password

    yield make
    for backend, user, admin_url in made:
        # The database first: a PostgreSQL role owning one cannot go.
        dbs.drop(admin_url)
        dbs.drop_user(backend, user)


def _command_lines() -> list[bytes]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    found.append(f.read())
            except OSError:
                continue  # gone meanwhile
    return found


def _forms(password: str) -> set[str]:
    import urllib.parse

    return {password, urllib.parse.quote(password, safe=""),
            urllib.parse.quote(password), urllib.parse.quote_plus(password)}


@pytest.mark.parametrize("backend", [
    pytest.param("postgresql", marks=[pytest.mark.postgresql]),
    pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.slow])])
def test_password_never_written(backend, password_url, tmp_path):
    """A kill, a status, a failure reverted after resuming, a clean run,
    a lock timeout and an abandon, all with --debug: the password (raw
    or quoted) is in no output, nowhere under the state directory
    (logbook, its journal files, backups and their names), and on no
    process's command line while the dump tool runs."""
    url, password = password_url(backend)
    tool = su.Tool(url, tmp_path, backup="full")
    outputs = []

    def run(*argv, **kwargs):
        done = tool.run("--debug", *argv, **kwargs)
        outputs.append(done)
        return done

    assert run("upgrade", "head", operation="upgrade",
               fault="inside:migrate_013:kill:3").code == -signal.SIGKILL
    assert run("status").code == 10
    failed = run("upgrade", "head", operation="upgrade",
                 fault="before:verify:fail")
    assert failed.code == su.EXIT_STEP_FAILED, failed
    assert failed.run["state"] == "reverted"
    assert run("upgrade", "head").code == 0
    # A run holding the lock (one step to do, then asleep in verify).
    migrate_util.set_version(url, "044")
    with tool.sleeping("upgrade", "head", fault="before:verify:sleep:60"):
        assert run("upgrade", "head", lock_timeout=1).code == \
            su.EXIT_LOCKED

    secrets = _forms(password)
    # While the dump tool runs: no command line holds the password.
    assert run("abandon").code == 0
    migrate_util.set_version(url, "044")
    with tool.sleeping("upgrade", "head", fault="inside:backup:sleep:60"):
        for cmdline in _command_lines():
            for secret in secrets:
                assert secret.encode() not in cmdline, cmdline
    for done in outputs:
        for secret in secrets:
            assert secret not in done.out and secret not in done.err, done
    backups = list((tool.state_dir / "backups").iterdir())
    assert backups
    for path in tool.state_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, path
                assert secret not in path.name


# -- stamp -----------------------------------------------------------------

@pytest.mark.parametrize("backend", _stop_params())
def test_failed_stamp_restores_the_version(backend, make_db, tmp_path):
    """stamp is guarded too: verify failing after the new stamp puts
    the old alembic_version back (and every row stays)."""
    url = make_db(backend)
    su.prepare(url, "019")
    before = _snapshot(url)
    tool = su.Tool(url, tmp_path)
    failed = tool.call("stamp", "030", fault="before:verify:fail")
    assert failed.code == su.EXIT_STEP_FAILED, failed
    assert failed.run["state"] == "reverted"
    assert "step verify failed" in _last_error(failed)
    _assert_identical(url, before)
    done = tool.call("stamp", "030")
    assert done.code == 0, done
    assert su.version(url) == "030"


@pytest.mark.parametrize("backend", _stop_params())
def test_failed_stamp_of_an_unversioned_database_drops_its_table(
        backend, make_db, tmp_path):
    """A database with no alembic_version (a user's table only): the
    stamp creates the table, verify fails, and the revert drops it
    again: the database is exactly as before, not merely "at base"."""
    import sqlalchemy as sa

    url = make_db(backend)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE ops_notes (id INTEGER "
                             "PRIMARY KEY, note VARCHAR(20))"))
        conn.execute(sa.text("INSERT INTO ops_notes VALUES (1, 'kept')"))
    engine.dispose()
    before = _snapshot(url)
    tool = su.Tool(url, tmp_path)
    failed = tool.call("stamp", "030", fault="before:verify:fail")
    assert failed.code == su.EXIT_STEP_FAILED, failed
    assert failed.run["state"] == "reverted"
    assert "alembic_version" not in _tables(url, "alembic")
    # Schema and rows as before (SQLite: its dump too; the dropped
    # table's pages stay in the file as free pages).
    after = _snapshot(url)
    assert su.state_diff(after["state"], before["state"]) == []
    assert after.get("dump") == before.get("dump")
    done = tool.call("stamp", "030")
    assert done.code == 0, done
    assert su.version(url) == "030"


# -- populate: its own revert, no dump --------------------------------------

_WF = "---\nversion: '2.0'\n\n%s:\n  tasks:\n    only:\n      action: %s\n"


def _populated_then_changed(url, tmp_path, monkeypatch):
    """A database at head populated from two workflow files, whose
    sources then change (one workflow changed, one gone, one new); the
    tool and the database's snapshot before the change."""
    su.prepare(url, "045")
    folder = tmp_path / "workflows"
    folder.mkdir()
    monkeypatch.setenv("MDF_TEST_WORKFLOWS_DIR", str(folder))
    (folder / "a.yaml").write_text(_WF % ("wf_changes", "std.noop"))
    (folder / "b.yaml").write_text(_WF % ("wf_goes", "std.noop"))
    tool = su.Tool(url, tmp_path / "tool")
    assert tool.call("populate").code == 0
    before = _snapshot(url)
    (folder / "a.yaml").write_text(_WF % ("wf_changes", "std.echo"))
    (folder / "b.yaml").unlink()
    (folder / "c.yaml").write_text(_WF % ("wf_new", "std.noop"))
    return tool, before


@pytest.mark.parametrize("backend", _stop_params())
def test_failed_populate_undoes_its_own_writes(backend, make_db, tmp_path,
                                               monkeypatch):
    """populate takes no dump: verify failing after a populate that
    added, updated and (--remove-missing) deleted workflows puts every
    row back exactly, through populate's own revert."""
    url = make_db(backend)
    tool, before = _populated_then_changed(url, tmp_path, monkeypatch)
    failed = tool.call("populate", "--remove-missing",
                       fault="before:verify:fail")
    assert failed.code == su.EXIT_STEP_FAILED, failed
    assert failed.run["state"] == "reverted"
    assert failed.run["backup"] is None
    report = failed.steps()["populate"]["detail"]
    assert report["workflows"]["added"] == ["wf_new"]
    assert report["workflows"]["removed"] == ["wf_goes"]
    assert "_journal" not in report
    assert su.state_diff(_snapshot(url)["state"], before["state"]) == []
    backups = tool.state_dir / "backups"
    assert not backups.exists() or not list(backups.iterdir())


def _tables(url: str, prefix: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [t for t in sa.inspect(conn).get_table_names()
                    if t.startswith(prefix)]
    finally:
        engine.dispose()


@pytest.mark.parametrize("then", [
    "populate", "upgrade", pytest.param("abandon", marks=pytest.mark.slow)])
@pytest.mark.parametrize("backend", _stop_params())
def test_a_cut_off_populate_revert_is_finished_from_the_database(
        backend, then, make_db, tmp_path, monkeypatch):
    """populate's undo journal (the rows it overwrote or removed) is
    kept in the database, never in the logbook: killed at the start of
    its revert, the run is finished from it by the same command
    (TaskFlow resumes the revert) or by another one (``upgrade`` first
    finishes the revert and says so); every row is as before and the
    journal table is gone. ``abandon`` instead leaves the rows as they
    are and drops the journal."""
    url = make_db(backend)
    tool, before = _populated_then_changed(url, tmp_path, monkeypatch)
    killed = tool.run("populate", "--remove-missing",
                      fault="before:verify:fail,revert:populate:kill")
    assert killed.code == -signal.SIGKILL, killed
    assert _tables(url, "mdf_revert") == ["mdf_revert_populate"]
    # The prior definitions (std.noop) are in the database's journal,
    # not in any file of the state directory (the logbook).
    for path in tool.state_dir.rglob("*"):
        if path.is_file():
            assert b"std.noop" not in path.read_bytes(), path
    if then == "populate":
        done = tool.run("populate", "--remove-missing")
        assert done.code == su.EXIT_STEP_FAILED, done
        run = done.doc["error"]["run"]
        assert (run["state"], run["resumed"]) == ("reverted", True), run
    elif then == "upgrade":
        done = tool.run("upgrade", "head")
        assert done.code == 0, done
        said = [line for line in done.err.splitlines()
                if "finished reverting the interrupted populate run"
                in line]
        assert len(said) == 1 and "populate undone" in said[0], done.err
    else:
        assert tool.run("abandon").code == 0
    assert _tables(url, "mdf_revert") == []
    left = su.state_diff(_snapshot(url)["state"], before["state"])
    assert (left != []) == (then == "abandon"), left
    assert tool.run("status").doc["interrupted"] is None


# -- a restore that fails --------------------------------------------------

@pytest.mark.parametrize("backend", _stop_params())
def test_corrupted_backup_is_refused_by_the_run(backend, make_db, tmp_path):
    """The run's backup changed on disk (one byte, same size) between
    the backup and a failed step: the revert refuses it before anything
    is dropped (exit 9, the file and its checksum named), the database
    stays where the failure left it, and the run stays recorded."""
    url = make_db(backend)
    su.prepare(url, "019")
    tool = su.Tool(url, tmp_path, backup="full")
    proc = tool.start("upgrade", "head",
                      fault="before:migrate_020:sleep:5,"
                      "before:migrate_021:fail")
    deadline = time.monotonic() + 120
    while not tool.faults_fired():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    (taken,) = [p for p in (tool.state_dir / "backups").iterdir()
                if p.name.endswith((".sqlite", ".pgdump", ".sql"))]
    data = bytearray(taken.read_bytes())
    data[len(data) // 2] ^= 0x01
    taken.write_bytes(bytes(data))
    out, err = proc.communicate(timeout=300)
    failed = su.Done(proc.returncode, out, err)
    assert failed.code == su.EXIT_RESTORE_FAILED, failed
    line = failed.error_line()
    assert "step migrate_021 failed" in line
    assert "refusing to restore %s" % taken in line and "sha256" in line
    # Nothing dropped or restored from the dump; the steps reverted
    # themselves from their journal first (backup = full adds the dump).
    assert su.version(url) == "019"
    interrupted = tool.call("status").doc["interrupted"]
    assert interrupted["backup"] == str(taken)


def _revert_failed(backend, make_db, tmp_path):
    url = make_db(backend)
    su.prepare(url, "019")
    tool = su.Tool(url, tmp_path, backup="full")
    failed = tool.call("upgrade", "head", fault="inside:migrate_022:fail:6,"
                       "restore:backup:fail")
    assert failed.code == su.EXIT_RESTORE_FAILED, failed
    assert failed.run["state"] == "revert_failed"
    message = failed.error_line()
    assert "step migrate_022 failed" in message
    assert "restoring the backup %s failed too: restore it by hand" \
        % failed.run["backup"] in message
    assert "; restore: injected fault restore:backup:fail:1 (" in message
    interrupted = tool.call("status").doc["interrupted"]
    assert (interrupted["state"], interrupted["backup"]) == (
        "stopped", failed.run["backup"])
    return url, tool


@pytest.mark.parametrize("backend", [
    pytest.param("sqlite"),
    pytest.param("postgresql", marks=[pytest.mark.postgresql,
                                      pytest.mark.slow])])
def test_failed_restore_says_so_then_resumes(backend, make_db, tmp_path):
    """The restore failing too: exit 9, one line naming both (the
    restore's own error last) and the backup to restore by hand, no
    traceback. Where the failed restore left the database on the run's
    way (SQLite, PostgreSQL: the restore is one transaction), the same
    command finishes the upgrade."""
    url, tool = _revert_failed(backend, make_db, tmp_path)
    done = tool.call("upgrade", "head")
    assert done.code == 0, done
    assert su.state_diff(su.state(url),
                         su.expected_head_state(backend, "019")) == []


@pytest.mark.slow
@pytest.mark.mysql
def test_failed_mysql_restore_is_retried(make_db, tmp_path):
    """After a failed MariaDB restore, the same command restores the
    backup again: the database as before the run, exit 7 (the step
    failed; the restore succeeded this time)."""
    url, tool = _revert_failed("mysql", make_db, tmp_path)
    assert su.version(url) is None  # emptied, nothing loaded
    again = tool.call("upgrade", "head")
    assert again.code == su.EXIT_STEP_FAILED, again
    assert again.run["state"] == "reverted"
