"""Under faults, the documented exit code and one line that says why.

Each test breaks something for real while a run is under way: the
server ends the step's session (PostgreSQL ``pg_terminate_backend``,
MariaDB ``KILL``), the backup file is damaged or gone when it is to be
restored, the backup or the state directory fills up (a small tmpfs),
the state directory is read-only, the logbook file is damaged. Each
asserts the exact exit code, exactly one error line naming what failed
(and the file concerned), and no traceback on stderr (no --debug).

Mounting a tmpfs needs root, as CI has; elsewhere those tests skip.
"""
from __future__ import annotations

import importlib
import os
import subprocess

import pytest

from mistral_db_flows import backup
from mistral_db_flows import migration
from mistral_db_flows.backup import common
from tests import conftest
from tests.functional import safety_util as su

PAGE = 4096


def _param(backend: str, *marks: pytest.MarkDecorator):
    return pytest.param(backend, id=backend, marks=[
        *su.BACKEND_MARKS.get(backend, ()), *marks])


@pytest.fixture
def tmpfs():
    """Factory: ``tmpfs(folder, size, readonly=False)`` mounts a tmpfs
    of ``size`` bytes on ``folder``; unmounted after the test."""
    mounted = []

    def mount(folder, size: int, *, readonly: bool = False):
        folder.mkdir(parents=True, exist_ok=True)
        options = "size=%d%s" % (size, ",ro" if readonly else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options,
                               "tmpfs", str(folder)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            message = "cannot mount a tmpfs (needs root): %s" % (
                proc.stderr.strip() or proc.returncode)
            if conftest.IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=True)


def _pages(size: int) -> int:
    return -(-size // PAGE) * PAGE


# -- the server ends the step's session ------------------------------------

@pytest.mark.parametrize("backend, command, fault", [
    pytest.param("postgresql", "upgrade", "inside:migrate_013:disconnect:3",
                 marks=[pytest.mark.postgresql], id="postgresql-upgrade"),
    pytest.param("mysql", "upgrade", "inside:migrate_013:disconnect:3",
                 marks=[pytest.mark.mysql], id="mysql-upgrade"),
    pytest.param("postgresql", "populate", "inside:populate:disconnect:1",
                 marks=[pytest.mark.postgresql], id="postgresql-populate"),
    pytest.param("mysql", "populate", "inside:populate:disconnect:1",
                 marks=[pytest.mark.mysql, pytest.mark.slow],
                 id="mysql-populate"),
])
def test_connection_terminated_during_a_step_exits_3(
        backend, command, fault, make_db, tmp_path):
    """The server terminates the session a step works in (the driver
    says the connection is gone, through SQLAlchemy for a migration, a
    bare driver for populate): exit 3 (database unreachable), the line
    names the step and the lost connection, the database is as before
    (upgrade: the backup is restored)."""
    su.require_fault_plugins()
    url = make_db(backend)
    if command == "upgrade":
        su.prepare(url, "008")
    else:
        migration.upgrade(url, su.HEAD)
    before = su.state(url)
    tool = su.Tool(url, tmp_path)

    failed = tool.call(command, *(["head"] if command == "upgrade" else []),
                       fault=fault)
    assert failed.code == su.EXIT_UNREACHABLE, failed
    assert tool.faults_fired(), "the session was never terminated"
    line = failed.error_line()
    step = fault.split(":")[1]
    assert "step %s failed: lost the connection to " % step in line
    # populate takes no dump: its own one transaction changed nothing.
    assert ("the database was restored from the backup" if command ==
            "upgrade" else "the database is as before") in line
    assert failed.doc["error"]["exit_code"] == su.EXIT_UNREACHABLE
    assert failed.run["state"] == "reverted"
    assert su.state_diff(su.state(url), before) == []


# -- the restore fails ------------------------------------------------------

def _gone(path: str) -> None:
    os.unlink(path)


def _grown(path: str) -> None:
    with open(path, "ab") as damaged:
        damaged.write(b"\0" * 100)


@pytest.mark.parametrize("damage, says", [
    (_gone, "cannot read it (No such file or directory)"),
    (_grown, "its size is"),
], ids=["missing", "changed"])
def test_restore_of_a_damaged_backup_exits_9_naming_it(
        damage, says, make_db, tmp_path, monkeypatch):
    """A step fails and the backup to restore is gone (or not the file
    the backup wrote any more): exit 9, one line naming the step, the
    backup file and why the restore refused it; the run stays recorded
    with its backup for a retry."""
    su.require_fault_plugins()
    url = make_db("sqlite")
    su.prepare(url, "019")
    tool = su.Tool(url, tmp_path)
    restore = backup.restore

    def damaged_first(database_url, taken, **kwargs):
        damage(taken["path"])
        return restore(database_url, taken, **kwargs)

    monkeypatch.setattr(backup, "restore", damaged_first)
    failed = tool.call("upgrade", "head", fault="inside:migrate_022:fail:6")
    assert failed.code == su.EXIT_RESTORE_FAILED, failed
    assert failed.run["state"] == "revert_failed"
    path = failed.run["backup"]
    line = failed.error_line()
    assert "step migrate_022 failed: injected fault" in line
    assert "restoring the backup %s failed too" % path in line
    assert "; restore: refusing to restore %s into " % path in line
    assert says in line
    assert failed.doc["error"]["exit_code"] == su.EXIT_RESTORE_FAILED
    interrupted = tool.call("status").doc["interrupted"]
    assert (interrupted["state"], interrupted["backup"]) == ("stopped",
                                                            path)


# -- full disks -------------------------------------------------------------

def _room_for_the_check_only(url: str, scratch) -> int:
    """A size passing the backup's estimate (a lower bound) that the
    backup itself does not fit in: the disk fills up while it is
    written."""
    u = common.parse(url)
    module = importlib.import_module("mistral_db_flows.backup.%s"
                                     % common.backend(u))
    estimate = module.check(u, str(scratch))
    if common.backend(u) == "sqlite":
        # The copy is the file's size, plus its journal.
        return _pages(estimate)
    written = backup.take(url, str(scratch), label="probe")["size"]
    size = _pages((estimate + written) // 2)
    assert estimate <= size < written, (estimate, written)
    return size


@pytest.mark.parametrize("backend", [_param("sqlite"),
                                     _param("postgresql")])
def test_backup_dir_filling_up_exits_8(backend, make_db, tmp_path, tmpfs):
    """The backup directory has room for the estimate but fills up
    while the backup is written: exit 8 naming the directory, nothing
    changed, no partial file left."""
    url = make_db(backend)
    su.prepare(url, "019")
    before = su.state(url)
    room = tmpfs(tmp_path / "backups", _room_for_the_check_only(
        url, tmp_path / "probe"))
    tool = su.Tool(url, tmp_path / "run", backup_dir=str(room))

    failed = tool.call("upgrade", "head")
    assert failed.code == su.EXIT_BACKUP_FAILED, failed
    line = failed.error_line()
    assert "step backup failed: " in line and str(room) in line
    assert "full" in line or "No space left on device" in line
    assert line.endswith("; nothing was changed")
    assert os.listdir(room) == []
    assert su.state_diff(su.state(url), before) == []
    assert tool.call("status").doc["interrupted"] is None


@pytest.mark.parametrize("backend", [_param("sqlite"),
                                     _param("mysql", pytest.mark.slow)])
def test_backup_dir_too_small_exits_8(backend, make_db, tmp_path, tmpfs):
    """A backup directory clearly too small is refused before the run:
    exit 8 naming it, nothing changed."""
    url = make_db(backend)
    su.prepare(url, "019")
    room = tmpfs(tmp_path / "backups", 2 * PAGE)
    tool = su.Tool(url, tmp_path / "run", backup_dir=str(room))

    failed = tool.call("upgrade", "head")
    assert failed.code == su.EXIT_BACKUP_FAILED, failed
    line = failed.error_line()
    assert "not enough free space in %s" % room in line
    assert su.version(url) == "019"


@pytest.mark.parametrize("size, steps_ran", [(24 * PAGE, False),
                                              (128 * PAGE, True)],
                         ids=["at-once", "mid-run"])
def test_state_dir_filling_up_names_the_logbook(size, steps_ran, tmp_path,
                                                tmpfs):
    """The state directory (the run's logbook) fills up, before the
    first step or between steps: exit 1, one line naming the logbook
    file and the way out; with room again, the same command finishes
    (or, when the disk filled up between two of TaskFlow's saves and
    left the run's record incomplete, says to `abandon` it first)."""
    url = "sqlite:///%s" % (tmp_path / "mistral.sqlite")
    tool = su.Tool(url, tmp_path, backup_dir=str(tmp_path / "backups"))
    tmpfs(tool.state_dir, size)

    failed = tool.run("upgrade", "head")
    assert failed.code == su.EXIT_ERROR, failed
    logbook = tool.state_dir / "logbook.sqlite"
    assert failed.error_line() == (
        "mistral-db-manage: error: the run logbook %s cannot be used: "
        "database or disk is full; free space there, then run the same "
        "command again (an interrupted run resumes)" % logbook)
    assert failed.doc["error"]["type"] == "LogbookError"
    assert (su.version(url) is not None) == steps_ran

    subprocess.run(["mount", "-o", "remount,size=%d" % (4096 * PAGE),
                    str(tool.state_dir)], check=True)
    done = tool.run("upgrade", "head")
    if done.code != 0:
        assert done.code == su.EXIT_ERROR, done
        line = done.error_line()
        assert "the run logbook %s cannot be used: the interrupted run's "\
            "record is incomplete" % logbook in line
        assert line.endswith("`abandon` that run (the database stays as "
                             "it is), then run the command again")
        assert tool.run("abandon").code == 0
        done = tool.run("upgrade", "head")
    assert done.code == 0, done
    assert su.version(url) == su.HEAD


def test_read_only_state_dir_names_the_logbook(tmp_path, tmpfs):
    """A state directory that cannot be written: exit 1 naming the
    logbook file, before anything is changed."""
    url = "sqlite:///%s" % (tmp_path / "mistral.sqlite")
    tool = su.Tool(url, tmp_path, backup_dir=str(tmp_path / "backups"))
    tmpfs(tool.state_dir, 16 * PAGE, readonly=True)

    failed = tool.run("upgrade", "head")
    assert failed.code == su.EXIT_ERROR, failed
    assert "the run logbook %s cannot be used: Read-only file system" % (
        tool.state_dir / "logbook.sqlite") in failed.error_line()
    assert not os.path.exists(tmp_path / "mistral.sqlite")


def test_damaged_logbook_names_its_path(tmp_path):
    """A logbook file that is not a SQLite database: exit 1, one line
    naming the file and the way out, the database untouched."""
    url = "sqlite:///%s" % (tmp_path / "mistral.sqlite")
    migration.upgrade(url, "030")
    tool = su.Tool(url, tmp_path)
    tool.state_dir.mkdir(parents=True)
    logbook = tool.state_dir / "logbook.sqlite"
    logbook.write_bytes(b"not a logbook at all " * 200)

    failed = tool.run("upgrade", "head")
    assert failed.code == su.EXIT_ERROR, failed
    assert failed.error_line() == (
        "mistral-db-manage: error: the run logbook %s cannot be used: file "
        "is not a database; fix its directory ([db_manage] state_dir), or "
        "move a damaged file away (the runs it recorded are then "
        "forgotten)" % logbook)
    assert failed.doc["error"]["type"] == "LogbookError"
    assert su.version(url) == "030"
