"""A run whose lock's session is ended changes nothing more.

The lock is a fence: it is checked before every step, before every
commit of the run's work and, on MariaDB (whose DDL commits at once),
before each schema statement. An administrator ending the lock's
session (PostgreSQL ``pg_terminate_backend``, MariaDB ``KILL``) while a
step runs stops the run there: the command exits 11 (``LockLost``),
reverts nothing, and running it again resumes the run. A second run
that took the lock meanwhile is never undone.
"""
from __future__ import annotations

import contextlib
import subprocess
import time
from typing import Iterator

import pytest
import sqlalchemy as sa

from mistral_db_flows import locking
from tests import migrate_util
from tests.functional import safety_util as su

# Long enough to find and end the lock's session while the step sleeps.
SLEEP = 6


def _end_lock_session(url: str, backend: str) -> None:
    """End the session holding the database's lock, from another one."""
    holder = locking.held_by(url)
    assert holder, "nobody holds the lock"
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text("SELECT pg_terminate_backend(:p)"),
                             {"p": holder["pid"]})
            else:
                conn.execute(sa.text("KILL %d" % holder["pid"]))
    finally:
        admin.dispose()


def _asleep(tool: su.Tool, proc: subprocess.Popen) -> None:
    """Until ``proc``'s sleep fault struck."""
    deadline = time.monotonic() + 120
    while not tool.faults_fired():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the fault never struck"
        time.sleep(0.1)


@contextlib.contextmanager
def _lock_ended_while_asleep(tool: su.Tool, url: str, backend: str,
                             fault: str) -> Iterator[subprocess.Popen]:
    """``upgrade head`` started with a sleep ``fault``, yielded once its
    lock's session was ended while it sleeps; killed if still running
    when the block ends."""
    proc = tool.start("upgrade", "head", fault=fault)
    try:
        _asleep(tool, proc)
        _end_lock_session(url, backend)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("backend", [
    pytest.param("postgresql", marks=[pytest.mark.postgresql]),
    pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.slow])])
def test_lost_lock_stops_before_the_next_step_and_resumes(
        backend, make_db, tmp_path):
    su.require_fault_plugins()
    url = make_db(backend)
    tool = su.Tool(url, tmp_path)
    with _lock_ended_while_asleep(
            tool, url, backend, "before:migrate_010:sleep:%d" % SLEEP
    ) as proc:
        out, err = proc.communicate(timeout=300)
    lost = su.Done(proc.returncode, out, err)
    assert lost.code == su.EXIT_LOCKED, lost
    assert lost.doc["error"]["type"] == "LockLost", lost
    assert "run the same command again to resume" in \
        lost.doc["error"]["message"]
    assert "Traceback" not in lost.err
    # The step that was running never committed; none after it started.
    assert su.version(url) == "009"
    interrupted = tool.run("status").doc["interrupted"]
    assert interrupted["in_progress"] is False
    assert interrupted["state"] == "running"
    resumed = tool.run("upgrade", "head")
    assert resumed.code == 0, resumed
    assert resumed.doc["resumed"] is True
    assert su.version(url) == su.HEAD
    assert migrate_util.schema_diff(url, su.HEAD) == []
    assert tool.run("status").doc["interrupted"] is None


# Slow on both servers (about a minute: two full runs and a lock-loss
# wait); test_lost_lock_stops_before_the_next_step_and_resumes checks the
# fence in less time.
@pytest.mark.parametrize("backend", [
    pytest.param("postgresql", marks=[pytest.mark.postgresql,
                                      pytest.mark.slow]),
    pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.slow])])
def test_a_run_that_lost_its_lock_never_undoes_the_next_one(
        backend, make_db, tmp_path):
    """Run A's lock session is ended while A is inside step 040 (six
    of its seven statements sent, asleep) and run B starts: B takes the lock and
    upgrades to head; A stops at its next statement or commit with exit
    11, undoing nothing, so B's success stays true; A's command run
    again finds the database at head."""
    su.require_fault_plugins()
    url = make_db(backend)
    tool_a = su.Tool(url, tmp_path / "a")
    tool_b = su.Tool(url, tmp_path / "b")
    # inside:STEP:sleep:N sleeps N s after the N-th statement and each
    # later one: 040 sends seven.
    with _lock_ended_while_asleep(
            tool_a, url, backend, "inside:migrate_040:sleep:%d" % SLEEP
    ) as proc_a:
        b = tool_b.run("upgrade", "head", timeout=300)
        out, err = proc_a.communicate(timeout=300)
    a = su.Done(proc_a.returncode, out, err)
    assert b.code == 0, b
    assert b.doc["end_revision"] == su.HEAD
    assert a.code == su.EXIT_LOCKED, a
    assert a.doc["error"]["type"] == "LockLost", a
    assert "reverting" not in a.err, a
    # B's success is what the database shows, after A too.
    assert su.version(url) == su.HEAD
    assert migrate_util.schema_diff(url, su.HEAD) == []
    again = tool_a.run("upgrade", "head")
    assert again.code == 0, again
    assert su.version(url) == su.HEAD
    assert migrate_util.schema_diff(url, su.HEAD) == []
