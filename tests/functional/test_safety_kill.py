"""Runs killed with SIGKILL resume where they died and finish the job.

Each case starts ``mistral-db-manage upgrade head`` in a subprocess with
the fault plugins (tests/plugins/mdf_fault), which SIGKILL the process
at a step boundary or inside a step (after the n-th changing statement,
or while the backup is written), on a database with seeded rows in
every table. The same command is then run again with the default task
list and no fault: it must resume the interrupted run (not start a new
one), not re-run the steps that had finished, and end with the
reference schema at head and exactly the rows an uninterrupted upgrade
gives.
"""
from __future__ import annotations

import os
import signal

import pytest

from tests import migrate_util
from tests.functional import safety_util as su

HEAD = su.HEAD


@pytest.fixture(autouse=True)
def _fault_plugins():
    su.require_fault_plugins()


Kill = su.Case

KILLS = [
    Kill("backup-inside", "008", "inside:backup:kill", "backup"),
    Kill("backup-after", "008", "after:backup:kill", "backup"),
    Kill("009-before", "008", "before:migrate_009:kill", "migrate_009"),
    Kill("009-inside", "008", "inside:migrate_009:kill:2", "migrate_009"),
    Kill("013-inside-3", "008", "inside:migrate_013:kill:3", "migrate_013"),
    Kill("013-inside-20", "008", "inside:migrate_013:kill:20",
         "migrate_013"),
    Kill("013-after", "008", "after:migrate_013:kill", "migrate_013",
         work_done=True),
    # 020 adds task_executions_v2.type, then types every seeded row.
    Kill("020-inside-1", "019", "inside:migrate_020:kill:1", "migrate_020"),
    Kill("020-inside-2", "019", "inside:migrate_020:kill:2", "migrate_020"),
    # 022: four new columns, a unique key rebuilt, three UPDATEs.
    Kill("022-inside-6", "019", "inside:migrate_022:kill:6", "migrate_022"),
    Kill("038-inside", "019", "inside:migrate_038:kill:1", "migrate_038"),
    Kill("verify-before", "019", "before:verify:kill", "verify"),
    Kill("verify-after", "019", "after:verify:kill", "verify",
         work_done=True),
]
# Always run (the rest is @slow): one kill inside a DDL-heavy step.
# The servers' kills run in CI, as every server test but the smoke
# tests (tests/conftest.py).
QUICK = {("sqlite", "013-inside-3")}
# MariaDB runs take twice as long: its matrix keeps the kills inside
# steps (its DDL is not transactional) and leaves out boundaries the
# other backends cover.
SKIP = {("mysql", case) for case in (
    "backup-after", "009-before", "013-inside-3", "020-inside-2",
    "038-inside", "verify-after")}


def _partial_backups(tool: su.Tool) -> list[str]:
    folder = tool.state_dir / "backups"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.name.endswith(".partial"))


@pytest.mark.parametrize("backend,case", su.matrix(KILLS, QUICK, SKIP))
def test_killed_upgrade_resumes_to_head(backend, case, make_db, tmp_path):
    """SIGKILL at ``case``; the same command again resumes and finishes:
    head schema, every seeded row as an uninterrupted upgrade leaves it,
    steps that had finished not run again."""
    url = make_db(backend)
    su.prepare(url, case.start)
    # A dump only where the kill hits it; else the steps revert
    # themselves (the default).
    dump = case.step == "backup"
    tool = su.Tool(url, tmp_path, backup="full" if dump else "steps")

    killed = tool.run("upgrade", "head", fault=case.fault)
    assert killed.code == -signal.SIGKILL, killed
    assert len(tool.faults_fired()) == 1, tool.faults_fired()

    status = tool.run("status")
    assert status.code == 10, status
    interrupted = status.doc["interrupted"]
    assert interrupted["operation"] == "upgrade"
    assert interrupted["target"] == HEAD
    assert interrupted["step"] == case.step, interrupted
    if dump and case.step != "backup":
        # Recorded by the backup step before the kill: status names it.
        assert interrupted["backup"] and os.path.exists(
            interrupted["backup"]), interrupted

    resumed = tool.run("upgrade", "head")
    assert resumed.code == 0, resumed
    doc = resumed.doc
    assert (doc["state"], doc["resumed"]) == ("upgraded", True), resumed
    assert (doc["start_revision"], doc["end_revision"]) == (case.start,
                                                            HEAD)
    names = [s["name"] for s in doc["steps"]]
    steps = resumed.steps()
    assert all(s["state"] == "done" for s in doc["steps"]), doc["steps"]
    # Finished before the kill: recorded, so not executed again (a step
    # run by this process reports what it did).
    for name in names[:names.index(case.step)]:
        assert steps[name]["detail"] is None, (name, steps[name])
    for name in names[names.index(case.step):]:
        assert steps[name]["detail"] is not None, (name, steps[name])
    if case.step.startswith("migrate_"):
        assert steps[case.step]["detail"]["applied"] is not case.work_done
    # The backup taken before the kill (or again, when the kill hit the
    # backup itself) is the run's backup.
    if dump:
        assert doc["backup"] and os.path.exists(doc["backup"]), doc
    else:
        assert doc["backup"] is None, doc

    assert migrate_util.schema_diff(url, HEAD) == []
    assert su.state_diff(su.state(url), su.expected_head_state(
        backend, case.start)) == []
    assert tool.run("status").code == 0
    assert _partial_backups(tool) == []


def test_kill_before_backup_of_a_new_sqlite_file(tmp_path):
    """A run on a SQLite file that does not exist yet, killed in its
    first migration, resumes (the 'no file before' backup is kept)."""
    su.require_fault_plugins()
    url = "sqlite:///%s" % (tmp_path / "new.sqlite")
    tool = su.Tool(url, tmp_path)
    killed = tool.run("upgrade", "head",
                      fault="inside:migrate_001:kill:2")
    assert killed.code == -signal.SIGKILL, killed
    resumed = tool.run("upgrade", "head")
    assert resumed.code == 0, resumed
    assert resumed.doc["resumed"] is True
    assert resumed.steps()["backup"]["detail"] is None
    assert migrate_util.schema_diff(url, HEAD) == []


@pytest.mark.slow
@pytest.mark.postgresql
def test_killed_twice_then_resumed(make_db, tmp_path):
    """Two kills in a row (the second one in the resumed run) still end
    at head with every row, as one uninterrupted upgrade."""
    url = make_db("postgresql")
    su.prepare(url, "019")
    tool = su.Tool(url, tmp_path)
    first = tool.run("upgrade", "head", fault="inside:migrate_020:kill:1")
    assert first.code == -signal.SIGKILL, first
    second = tool.run("upgrade", "head", fault="inside:migrate_022:kill:3")
    assert second.code == -signal.SIGKILL, second
    done = tool.run("upgrade", "head")
    assert done.code == 0, done
    assert done.doc["resumed"] is True
    assert done.steps()["migrate_020"]["detail"] is None
    assert su.state_diff(su.state(url), su.expected_head_state(
        "postgresql", "019")) == []


# -- a kill during the revert ----------------------------------------------

REVERT_KILLS = [
    # The step to fail is the same; the kill hits the revert at
    # different points: an earlier (no-op) step's revert, the start of
    # the backup's revert, inside the restore (SQLite: pages copied
    # back; PostgreSQL: script sent, no COMMIT; MariaDB: tables dropped,
    # nothing loaded), and after the restore before it was recorded.
    Kill("migrate-revert", "019", "revert:migrate_020:kill", "migrate_022"),
    Kill("backup-revert", "019", "revert:backup:kill", "migrate_022"),
    Kill("restore-inside", "019", "restore:backup:kill", "migrate_022"),
    Kill("restore-done", "019", "reverted:backup:kill", "migrate_022"),
]
QUICK_REVERT = {("sqlite", "restore-inside")}
SKIP_REVERT = {("mysql", "migrate-revert"), ("mysql", "restore-done")}


@pytest.mark.parametrize("backend,case",
                         su.matrix(REVERT_KILLS, QUICK_REVERT,
                                   SKIP_REVERT))
def test_killed_revert_finishes_when_run_again(backend, case, make_db,
                                               tmp_path):
    """A step fails, the revert is killed: the same command finishes the
    revert (the database identical to before the run) and says so; the
    next run upgrades normally."""
    url = make_db(backend)
    su.prepare(url, case.start)
    before = su.state(url)
    tool = su.Tool(url, tmp_path, backup="full")

    killed = tool.run("upgrade", "head",
                      fault="inside:migrate_022:fail:6," + case.fault)
    assert killed.code == -signal.SIGKILL, killed
    fired = {line.split()[3] for line in tool.faults_fired()}
    assert fired == {"inside:migrate_022:fail:6", case.fault + ":1"}, fired
    assert tool.run("status").doc["interrupted"]["target"] == HEAD

    finished = tool.run("upgrade", "head")
    assert finished.code == su.EXIT_STEP_FAILED, finished
    run = finished.run
    assert (run["state"], run["resumed"]) == ("reverted", True), finished
    message = finished.err.strip().splitlines()[-1]
    assert "step %s failed: injected fault" % case.step in message
    assert "restored from the backup" in message
    assert run["backup"] and os.path.exists(run["backup"])
    assert su.state_diff(su.state(url), before) == []
    assert tool.run("status").doc["interrupted"] is None

    done = tool.run("upgrade", "head")
    assert done.code == 0, done
    assert (done.doc["state"], done.doc["resumed"]) == ("upgraded", False)
    assert su.state_diff(su.state(url), su.expected_head_state(
        backend, case.start)) == []


# -- refusals --------------------------------------------------------------

def _killed_inside_013(make_db, tmp_path, target: str) -> su.Tool:
    """A SQLite database at 008 whose ``upgrade target`` was killed
    inside 013 (the database left at 012)."""
    url = make_db("sqlite")
    su.prepare(url, "008")
    # With a dump: the refusals name it, abandon keeps it.
    tool = su.Tool(url, tmp_path, backup="full")
    killed = tool.run("upgrade", target, fault="inside:migrate_013:kill:3")
    assert killed.code == -signal.SIGKILL, killed
    assert su.version(url) == "012"
    return tool


@pytest.fixture
def interrupted(make_db, tmp_path):
    """A SQLite database whose upgrade to head was killed inside 013."""
    return _killed_inside_013(make_db, tmp_path, "head")


def _refused(done: su.Done) -> str:
    assert done.code == su.EXIT_REFUSED, done
    assert done.doc["error"]["type"] == "ResumeRefused"
    return done.doc["error"]["message"]


def test_other_target_refused_until_abandoned(interrupted):
    """Another target or operation is refused (exit 12) naming the
    interrupted run, its step and the two ways out; the database is not
    touched. After `abandon` a new run works."""
    tool = interrupted
    before = su.state(tool.url)
    message = _refused(tool.call("upgrade", "030"))
    for part in ("this run asks for 030", "interrupted upgrade to 045",
                 "step migrate_013", "`upgrade 045`", "`abandon`"):
        assert part in message, message
    assert "this is stamp" in _refused(tool.call("stamp", "030"))
    assert su.state_diff(su.state(tool.url), before) == []

    named = tool.call("status").doc["interrupted"]["backup"]
    assert named and os.path.exists(named)
    abandoned = tool.call("abandon")
    assert abandoned.code == 0, abandoned
    assert abandoned.doc["abandoned"]["step"] == "migrate_013"
    # The run's backup is named (and kept) for a restore by hand.
    assert abandoned.doc["abandoned"]["backup"] == named
    assert os.path.exists(named)
    assert tool.call("status").doc["interrupted"] is None
    assert su.state_diff(su.state(tool.url), before) == []

    upgraded = tool.call("upgrade", "030")
    assert upgraded.code == 0, upgraded
    assert upgraded.doc["resumed"] is False
    assert migrate_util.schema_diff(tool.url, "030") == []
    assert tool.call("abandon").doc["abandoned"] is None


def test_changed_task_list_is_refused(interrupted):
    """The same command with another task list (here without
    check_branches) would run a different flow: refused."""
    tool = interrupted
    config = tool.config(upgrade_tasks="backup, migrate, verify")
    message = _refused(tool.call("upgrade", "head", config=config))
    assert "steps differ" in message
    assert "step migrate_013" in message
    # The original task list still resumes it.
    assert tool.call("upgrade", "head").code == 0


def test_same_relative_upgrade_resumes_to_its_first_target(make_db,
                                                            tmp_path):
    """``upgrade +6`` from 008 aims at 014; killed inside 013 (the
    database at 012), the same ``upgrade +6`` finishes at 014, not 018.
    Another relative request is refused."""
    tool = _killed_inside_013(make_db, tmp_path, "+6")
    assert "this run asks for" in _refused(tool.call("upgrade", "+5"))
    resumed = tool.call("upgrade", "+6")
    assert resumed.code == 0, resumed
    assert (resumed.doc["resumed"], resumed.doc["end_revision"]) == (
        True, "014")
    assert migrate_util.schema_diff(tool.url, "014") == []


def test_database_moved_elsewhere_is_refused(interrupted):
    """Someone stamped the database off the run's path: refused."""
    tool = interrupted
    migrate_util.set_version(tool.url, "005")
    message = _refused(tool.call("upgrade", "head"))
    assert "at 005 now" in message and "not on that run's way" in message
    assert su.version(tool.url) == "005"


# -- populate --------------------------------------------------------------

@pytest.mark.parametrize("backend", [
    pytest.param(b, id=b, marks=list(su.BACKEND_MARKS.get(b, ()))
                 + [pytest.mark.slow]) for b in ("sqlite", "postgresql",
                                                 "mysql")])
def test_killed_populate_resumes(backend, make_db, tmp_path):
    """populate killed after its first write (one transaction: nothing
    kept) and before verify: the same command resumes and leaves the
    rows a clean populate leaves."""
    url = make_db(backend)
    clean = make_db(backend)
    for target in (url, clean):
        su.prepare(target, HEAD)
    tool = su.Tool(url, tmp_path)
    assert su.Tool(clean, tmp_path / "clean").run("populate").code == 0
    for fault, step in (("inside:populate:kill:1", "populate"),
                        ("before:verify:kill", "verify")):
        killed = tool.run("populate", fault=fault)
        assert killed.code == -signal.SIGKILL, killed
        interrupted = tool.run("status").doc["interrupted"]
        assert (interrupted["operation"], interrupted["step"]) == (
            "populate", step)
        resumed = tool.run("populate")
        assert resumed.code == 0, resumed
        assert (resumed.doc["state"], resumed.doc["resumed"]) == (
            "populated", True)
        # Populate makes new ids and timestamps each time.
        fresh = frozenset({"id", "created_at", "updated_at"})
        assert su.state_diff(su.row_checksums(url, fresh),
                             su.row_checksums(clean, fresh)) == []


# -- a shared logbook ------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("logbook,target", [
    pytest.param("postgresql", "sqlite", marks=[pytest.mark.postgresql]),
    pytest.param("mysql", "postgresql",
                 marks=[pytest.mark.mysql, pytest.mark.postgresql])])
def test_killed_run_resumes_from_a_shared_logbook(logbook, target, make_db,
                                                  tmp_path):
    """With ``logbook_connection`` (runs recorded in a server database)
    status sees the killed run and the same command resumes it."""
    url = make_db(target)
    su.prepare(url, "008")
    tool = su.Tool(url, tmp_path, logbook_connection=make_db(logbook))
    killed = tool.run("upgrade", "head", fault="inside:migrate_013:kill:3")
    assert killed.code == -signal.SIGKILL, killed
    interrupted = tool.run("status").doc["interrupted"]
    assert (interrupted["step"], interrupted["state"]) == ("migrate_013",
                                                          "running")
    assert not (tool.state_dir / "logbook.sqlite").exists()
    resumed = tool.run("upgrade", "head")
    assert resumed.code == 0, resumed
    assert resumed.doc["resumed"] is True
    assert su.state_diff(su.state(url),
                         su.expected_head_state(target, "008")) == []
