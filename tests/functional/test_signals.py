"""SIGTERM and SIGINT during a run: exit 143 / 130 within seconds,
saying how to go on, and the same command resumes the run.

PostgreSQL and MariaDB, with the statement cancelled on the server
while it waits for a lock, are in test_lock_waits.
"""
from __future__ import annotations

import signal
import time

import pytest

from tests.functional import safety_util as su


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143),
                                          (signal.SIGINT, 130)])
def test_a_signal_mid_run_exits_at_once_and_the_run_resumes(
        signum, code, make_db, tmp_path):
    """A run asleep inside its steps gets the signal: it exits with the
    signal's code within 5 s, says how to resume, leaves its run
    recorded as running, and the same command finishes at head."""
    su.require_fault_plugins()
    url = make_db("sqlite")
    tool = su.Tool(url, tmp_path)
    with tool.sleeping("upgrade", "head",
                       fault="before:migrate_010:sleep:60") as proc:
        sent = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    done = su.Done(proc.returncode, out, err)
    assert done.code == code, done
    assert took < 5, took
    line = done.error_line()
    assert "interrupted by %s" % signal.Signals(signum).name in line
    assert "Run the same command to resume, or" in line
    su.assert_interrupted_then_resumes(tool)


def _wait_for_text(proc, text: str, timeout: float = 60) -> str:
    """Read ``proc``'s stderr until ``text`` shows (or it ends)."""
    import os

    fd = proc.stderr.fileno()
    os.set_blocking(fd, False)
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert proc.poll() is None, seen
        assert time.monotonic() < deadline, seen
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            chunk = b""
        seen += chunk.decode(errors="replace")
        time.sleep(0.05)
    os.set_blocking(fd, True)
    return seen


@pytest.mark.parametrize("backend", [
    pytest.param(b, id=b, marks=list(su.BACKEND_MARKS.get(b, ())) + (
        [] if b == "sqlite" else [pytest.mark.slow]))
    for b in ("sqlite", "postgresql", "mysql")])
def test_sigterm_while_waiting_for_another_runs_lock(backend, make_db,
                                                     tmp_path):
    """A second run waiting for the first one's lock gets SIGTERM: it
    exits 143 within 5 s, says it changed nothing and to run the
    command again once the other run ended (not "resume": it had no
    run), and changed nothing: the first run's record and the database
    are as the first run left them, and that run then resumes."""
    su.require_fault_plugins()
    url = make_db(backend)
    tool = su.Tool(url, tmp_path)
    with tool.sleeping("upgrade", "head",
                       fault="before:migrate_010:sleep:120"):
        waiter = tool.start("upgrade", "head", lock_timeout=300)
        earlier = _wait_for_text(waiter, "waiting for the lock of database")
        sent = time.monotonic()
        waiter.send_signal(signal.SIGTERM)
        out, err = waiter.communicate(timeout=30)
        took = time.monotonic() - sent
        assert su.version(url) == "009"
    done = su.Done(waiter.returncode, out, earlier + err)
    assert done.code == 143, done
    assert took < 5, took
    line = done.error_line()
    assert "interrupted by SIGTERM" in line, line
    assert "waiting for another run's lock and changed nothing" in line
    assert "once that run has ended" in line and "resume" not in line
    assert su.version(url) == "009"
    status = tool.run("status").doc["interrupted"]
    assert (status["operation"], status["step"]) == ("upgrade",
                                                     "migrate_010")
    su.assert_interrupted_then_resumes(tool)
