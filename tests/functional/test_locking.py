"""One run at a time: the database lock on real servers and files.

A second holder waits, then fails naming the first; a holder killed with
SIGKILL leaves no stale lock; eight concurrent processes take turns; a
lock session cut by the server is noticed; none of it imports SQLAlchemy.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from mistral_db_flows import exceptions
from mistral_db_flows import locking
from tests import conftest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# A child process that takes the lock, says so, and holds it.
_HOLDER = textwrap.dedent("""
    import sys, time
    from mistral_db_flows import locking
    with locking.hold(sys.argv[1], timeout=30, owner=sys.argv[2]):
        print("locked", flush=True)
        time.sleep(600)
""")

# A child that waits for the lock, then records its turn.
_TURN = textwrap.dedent("""
    import json, os, sys, time
    from mistral_db_flows import locking
    url, log = sys.argv[1], sys.argv[2]
    with locking.hold(url, timeout=120, owner="turn"):
        start = time.time()
        time.sleep(0.2)
        end = time.time()
    with open(log, "a") as out:
        out.write(json.dumps([start, end]) + "\\n")
""")


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                            **kwargs)


def _start_holder(url: str, owner: str) -> subprocess.Popen:
    child = _python(_HOLDER, url, owner, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "locked", "holder did not take the lock"
    return child


def test_second_holder_times_out_naming_the_first(db_url):
    """While one run holds the lock, another waits about its timeout and
    gets LockTimeout (exit code 11) saying who holds it."""
    with locking.hold(db_url, timeout=5, owner="upgrade head") as first:
        first.check()
        started = time.monotonic()
        with pytest.raises(exceptions.LockTimeout) as err:
            with locking.hold(db_url, timeout=0.5, owner="second"):
                pytest.fail("two holders at once")
        waited = time.monotonic() - started
        assert 0.4 <= waited < 5
        assert err.value.exit_code == 11
        holder = err.value.holder
        assert holder, "the holder should be known"
        if first.backend == "mysql":
            mine = first.handle.rows("SELECT CONNECTION_ID()")[0][0]
            assert holder["pid"] == mine
            assert "locked by pid %d" % mine in str(err.value)
            if "client_pid" in holder:  # with the performance schema on
                assert "client pid %d" % os.getpid() in str(err.value)
        else:
            described = holder.get("owner") or holder.get("application")
            assert "upgrade head" in described
            assert "pid %d" % os.getpid() in str(err.value)
        with pytest.raises(exceptions.LockTimeout):
            with locking.hold(db_url, timeout=0, owner="third"):
                pytest.fail("two holders at once")
    with locking.hold(db_url, timeout=0, owner="after release"):
        pass


def test_lock_is_released_when_the_body_fails(db_url):
    """An exception inside the block releases the lock."""
    with pytest.raises(RuntimeError):
        with locking.hold(db_url, timeout=1, owner="failing run"):
            raise RuntimeError("step failed")
    with locking.hold(db_url, timeout=0, owner="next run"):
        pass


def test_holder_killed_with_sigkill_leaves_no_stale_lock(db_url):
    """A holder process killed with SIGKILL loses the lock at once: the
    next run takes it within seconds."""
    child = _start_holder(db_url, "doomed run")
    try:
        with pytest.raises(exceptions.LockTimeout) as err:
            with locking.hold(db_url, timeout=0.2, owner="waiter"):
                pytest.fail("two holders at once")
        # The holder named is the child: its process (SQLite's lock
        # file), its session's application name (PostgreSQL), or its
        # client pid where MariaDB's performance schema shows it.
        holder = err.value.holder or {}
        if db_url.startswith("sqlite"):
            assert holder["pid"] == child.pid
        elif db_url.startswith("postgresql"):
            assert "pid %d " % child.pid in holder["application"]
        elif "client_pid" in holder:
            assert holder["client_pid"] == child.pid
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        started = time.monotonic()
        with locking.hold(db_url, timeout=10, owner="next run"):
            assert time.monotonic() - started < 10
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_eight_concurrent_runs_take_turns(db_url, tmp_path):
    """Eight processes started together all get the lock, one after the
    other: no two hold it at the same time."""
    log = tmp_path / "turns.jsonl"
    children = [_python(_TURN, db_url, str(log)) for _ in range(8)]
    codes = [child.wait(timeout=180) for child in children]
    assert codes == [0] * 8
    turns = sorted(json.loads(line) for line in log.read_text().split("\n")
                   if line)
    assert len(turns) == 8
    for (_, end), (start, _) in zip(turns, turns[1:]):
        assert start >= end, "two runs held the lock at once"


@pytest.mark.parametrize("backend_name", conftest.server_params())
def test_lost_server_session_is_detected(make_db, backend_name):
    """If the server ends the lock's session, check() says the lock is
    lost instead of letting the run go on unprotected."""
    url = make_db(backend_name)
    with locking.hold(url, timeout=1, owner="victim") as lock:
        lock.check()
        admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            if backend_name == "postgresql":
                pid = lock.handle.rows("SELECT pg_backend_pid()")[0][0]
                conn.execute(sa.text("SELECT pg_terminate_backend(:p)"),
                             {"p": pid})
            else:
                pid = lock.handle.rows("SELECT CONNECTION_ID()")[0][0]
                conn.execute(sa.text("KILL %d" % pid))
        admin.dispose()
        time.sleep(0.2)
        with pytest.raises(exceptions.LockError) as err:
            lock.check()
        assert "lost the lock on database" in str(err.value)
        assert not isinstance(err.value, exceptions.LockTimeout)


@pytest.mark.parametrize("backend_name", conftest.server_params())
def test_lock_session_is_not_left_in_a_transaction(make_db, backend_name):
    """The lock's session stays in autocommit: a long run never keeps an
    idle transaction (and its snapshot) open on the server."""
    url = make_db(backend_name)
    with locking.hold(url, timeout=1, owner="long run") as lock:
        lock.check()
        if backend_name == "postgresql":
            pid = lock.handle.rows("SELECT pg_backend_pid()")[0][0]
            admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
            with admin.connect() as conn:
                state = conn.execute(sa.text(
                    "SELECT state FROM pg_stat_activity WHERE pid = :p"),
                    {"p": pid}).scalar()
            admin.dispose()
            assert state == "idle"
        else:
            assert lock.handle.rows("SELECT @@autocommit")[0][0] == 1


# Takes the lock, fails to take it a second time (naming the holder),
# checks it, and says whether SQLAlchemy was imported on the way.
_NO_SQLALCHEMY = textwrap.dedent("""
    import sys
    from mistral_db_flows import exceptions
    from mistral_db_flows import locking
    with locking.hold(sys.argv[1], timeout=5, owner="populate") as lock:
        lock.check()
        try:
            with locking.hold(sys.argv[1], timeout=0.2, owner="second"):
                raise SystemExit("two holders at once")
        except exceptions.LockTimeout as exc:
            assert "populate" in str(exc) or (
                "locked by pid %d " % exc.holder["pid"] in str(exc))
        lock.check()
    print("sqlalchemy" in sys.modules)
""")


def test_plain_url_lock_does_not_import_sqlalchemy(db_url):
    """Holding, waiting for and checking the lock of a plain URL never
    imports SQLAlchemy (it costs about 0.1 s; populate cannot afford
    it)."""
    child = _python(_NO_SQLALCHEMY, db_url, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == "False"


def test_unbounded_timeout_is_accepted(db_url):
    """An infinite (or huge) timeout means "wait for ever", not an
    error from the server's own limits."""
    for timeout in (float("inf"), 1e12):
        with locking.hold(db_url, timeout=timeout, owner="patient") as lock:
            lock.check()


def test_a_waiting_run_says_at_once_who_holds_the_lock(db_url):
    """Waiting for another run's lock is said at once (not after the
    timeout), naming the holder: its pid where the backend can show it
    (the lock file's record; PostgreSQL's application name), else its
    connection id."""
    child = _start_holder(db_url, "upgrade head")
    heard: list[tuple[float, str]] = []
    try:
        started = time.monotonic()
        with pytest.raises(exceptions.LockTimeout):
            with locking.hold(db_url, timeout=2, owner="second",
                              on_wait=lambda text: heard.append(
                                  (time.monotonic() - started, text))):
                pytest.fail("two holders at once")
    finally:
        child.kill()
        child.wait()
    assert heard, "nothing said while waiting"
    said_after, text = heard[0]
    assert said_after < 1, heard
    assert text.startswith("waiting for the lock of database"), text
    if "mysql" in db_url:
        # GET_LOCK tells the holder's session (its connection id).
        assert "held by pid " in text, text
    else:
        assert "pid %d" % child.pid in text, text
