"""A run whose lock's session is ended stops before its next step.

The engine checks the lock before every step. An administrator ending
the lock's session (PostgreSQL ``pg_terminate_backend``, MariaDB
``KILL``) while a step runs lets that step finish; the next one never
starts, the command exits 11 (``LockLost``) and running it again
resumes the run.
"""
from __future__ import annotations

import subprocess
import time

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
                             {"p": holder["backend_pid"]})
            else:
                conn.execute(sa.text("KILL %d" % holder["connection_id"]))
    finally:
        admin.dispose()


def _asleep(tool: su.Tool, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not tool.faults_fired():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the fault never struck"
        time.sleep(0.1)


@pytest.mark.parametrize("backend", [
    pytest.param("postgresql", marks=[pytest.mark.postgresql]),
    pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.slow])])
def test_lost_lock_stops_before_the_next_step_and_resumes(
        backend, make_db, tmp_path):
    su.require_fault_plugins()
    url = make_db(backend)
    tool = su.Tool(url, tmp_path)
    proc = tool.start("upgrade", "head",
                      fault="before:migrate_010:sleep:%d" % SLEEP)
    try:
        _asleep(tool, proc)
        _end_lock_session(url, backend)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lost = su.Done(proc.returncode, out, err)
    assert lost.code == su.EXIT_LOCKED, lost
    assert lost.doc["error"]["type"] == "LockLost", lost
    assert "run the same command again to resume" in \
        lost.doc["error"]["message"]
    assert "Traceback" not in lost.err
    # The step that was running finished; the next one never started.
    assert su.version(url) == "010"
    interrupted = tool.run("status").doc["interrupted"]
    assert interrupted["in_progress"] is False
    assert interrupted["state"] == "running"
    resumed = tool.run("upgrade", "head")
    assert resumed.code == 0, resumed
    assert resumed.doc["resumed"] is True
    assert su.version(url) == su.HEAD
    assert migrate_util.schema_diff(url, su.HEAD) == []
    assert tool.run("status").doc["interrupted"] is None
