"""Concurrent runs: one at a time, the rest wait, nothing breaks.

Eight ``mistral-db-manage upgrade head`` processes started together on
one database all succeed: one migrates, the others find the database at
head once they get the lock. A run that waits longer than the lock
timeout exits 11 naming the run that holds the lock. Runs on different
databases sharing one state directory (one logbook file) do not get in
each other's way, and eight runs after a killed one resume it once.
"""
from __future__ import annotations

import signal
import time

import pytest

from tests import dbs
from tests import migrate_util
from tests.functional import safety_util as su

HEAD = su.HEAD


def _backends(quick: set):
    return [pytest.param(b, id=b, marks=list(su.BACKEND_MARKS.get(b, ()))
                         + ([] if b in quick else [pytest.mark.slow]))
            for b in dbs.BACKENDS]


def _together(tool: su.Tool, n: int = 8) -> list[su.Done]:
    config = tool.config()
    procs = [tool.start("upgrade", "head", config=config) for _ in range(n)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(su.Done(proc.returncode, out, err))
    return done


# Slow on every backend (server tests are, tests/conftest.py): eight
# runs taking turns on SQLite are in test_locking's quick subset.
@pytest.mark.parametrize("backend", _backends(set()))
def test_eight_concurrent_upgrades(backend, make_db, tmp_path):
    """Eight upgrades at once: all exit 0, exactly one migrates, the
    schema is head's."""
    url = make_db(backend)
    tool = su.Tool(url, tmp_path)
    runs = _together(tool)
    assert [r.code for r in runs] == [0] * 8, runs
    states = sorted(r.doc["state"] for r in runs)
    assert states == ["unchanged"] * 7 + ["upgraded"], runs
    for run in runs:
        assert "Traceback" not in run.err
    assert migrate_util.schema_diff(url, HEAD) == []
    assert tool.run("verify").code == 0


@pytest.mark.parametrize("backend", _backends(set()))
def test_lock_timeout_names_the_holder(backend, make_db, tmp_path):
    """A run waiting longer than lock_timeout exits 11 naming the run
    holding the lock (its pid; MariaDB: its session); once that run is
    gone (SIGKILL), the next run gets the lock at once and resumes
    it. Meanwhile status says whether the run is going or was killed."""
    su.require_fault_plugins()
    url = make_db(backend)
    tool = su.Tool(url, tmp_path)
    with tool.sleeping("upgrade", "head",
                       fault="before:migrate_010:sleep:120") as holder:
        waited = tool.run("upgrade", "head", lock_timeout=1)
        assert waited.code == su.EXIT_LOCKED, waited
        assert waited.doc["error"]["type"] == "LockTimeout"
        message = waited.doc["error"]["message"]
        if backend == "mysql":
            # GET_LOCK knows the holder's session only: its connection
            # id and the client's address, not the process.
            assert "locked by pid " in message, message
            assert "127.0.0.1" in message, message
        else:
            assert "pid %d" % holder.pid in message, message
        assert "gave up after 1s" in message
        assert su.version(url) == "009"
        # status tells a run that is still going from an interrupted one.
        going = tool.run("status")
        run = going.doc["interrupted"]
        assert (run["in_progress"], run["step"]) == (True, "migrate_010")
        assert run["holder"] is not None
    killed = tool.run("status").doc["interrupted"]
    assert (killed["in_progress"], killed["step"]) == (False, "migrate_010")
    started = time.monotonic()
    resumed = tool.run("upgrade", "head", lock_timeout=5)
    assert resumed.code == 0, resumed
    assert resumed.doc["resumed"] is True
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_databases_sharing_a_state_dir(make_db, tmp_path):
    """Upgrades of four SQLite databases at once, one state directory
    (one logbook file): all succeed, each recorded as its own run."""
    urls = [make_db("sqlite") for _ in range(4)]
    tools = [su.Tool(url, tmp_path) for url in urls]
    procs = [t.start("upgrade", "head") for t in tools]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, su.Done(proc.returncode, out, err)
    for tool in tools:
        assert migrate_util.schema_diff(tool.url, HEAD) == []
        assert tool.run("status").code == 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", _backends(set()))
def test_eight_runs_after_a_kill_resume_it_once(backend, make_db,
                                                tmp_path):
    """A run killed inside 013, then eight upgrades at once: one resumes
    it, the others find head; every seeded row as after one clean
    upgrade."""
    su.require_fault_plugins()
    url = make_db(backend)
    su.prepare(url, "008")
    tool = su.Tool(url, tmp_path)
    killed = tool.run("upgrade", "head", fault="inside:migrate_013:kill:3")
    assert killed.code == -signal.SIGKILL, killed
    runs = _together(tool)
    assert [r.code for r in runs] == [0] * 8, runs
    outcomes = sorted((r.doc["state"], r.doc["resumed"]) for r in runs)
    assert outcomes == [("unchanged", False)] * 7 + [("upgraded", True)]
    assert su.state_diff(su.state(url),
                         su.expected_head_state(backend, "008")) == []
