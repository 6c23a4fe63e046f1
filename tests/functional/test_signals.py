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
