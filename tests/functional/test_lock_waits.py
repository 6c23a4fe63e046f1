"""A schema change waiting for another session's lock: readers of the
table still get through, the operator is told who holds the lock, and
SIGTERM cancels the wait on the server and leaves a resumable run.

The other session is a user transaction holding a share lock on
``task_executions_v2`` (PostgreSQL ``LOCK TABLE ... IN SHARE MODE``;
MariaDB a transaction that read the table, holding its metadata lock),
while ``upgrade head`` runs from 030 (031 alters that table).
"""
from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from typing import Iterator

import pytest
import sqlalchemy as sa

from mistral_db_flows import migration
from tests import migrate_util
from tests.functional import safety_util as su

TABLE = "task_executions_v2"
BACKENDS = [
    pytest.param("postgresql", marks=[pytest.mark.postgresql]),
    pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.slow])]


class Lines:
    """A running process's stderr, read line by line in a thread."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,),
                                        daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, proc: subprocess.Popen,
                 timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            assert proc.poll() is None or self._thread.is_alive(), \
                "".join(self.lines)
            time.sleep(0.1)
        raise AssertionError("no %r in:\n%s" % (text, "".join(self.lines)))

    def text(self) -> str:
        self._thread.join(10)
        return "".join(self.lines)


@contextlib.contextmanager
def _share_lock_held(url: str, backend: str) -> Iterator[int]:
    """A session holding a share lock on TABLE for the block; yields
    its pid on the server (MariaDB: its connection id)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    conn = engine.connect()
    try:
        if backend == "postgresql":
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            conn.execute(sa.text("LOCK TABLE %s IN SHARE MODE" % TABLE))
        else:
            pid = conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar()
            conn.execute(sa.text("SELECT count(*) FROM %s" % TABLE))
        yield pid
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()


def _reader_succeeds(url: str, backend: str) -> float:
    """Read TABLE with a 3 s lock timeout (raises if it times out);
    returns how long it took."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(
                "SET lock_timeout = '3s'" if backend == "postgresql"
                else "SET SESSION lock_wait_timeout = 3"))
            started = time.monotonic()
            conn.execute(sa.text("SELECT count(*) FROM %s" % TABLE))
            return time.monotonic() - started
    finally:
        engine.dispose()


def _at_030(url: str) -> None:
    migration.upgrade(url, "030")
    su.seed(url, "w")


def _start(tool: su.Tool, **options) -> tuple[subprocess.Popen, Lines]:
    proc = tool.start("upgrade", "head", lock_timeout=120, **options)
    return proc, Lines(proc)


@pytest.mark.parametrize("backend", BACKENDS)
def test_readers_pass_while_we_wait_and_we_name_the_holder(
        backend, make_db, tmp_path):
    """While a user transaction holds a share lock on the table 031
    alters, readers with a 3 s lock timeout keep succeeding, our output
    names the holder's pid, and once it ends we finish at head."""
    url = make_db(backend)
    _at_030(url)
    tool = su.Tool(url, tmp_path)
    with _share_lock_held(url, backend) as pid:
        proc, err = _start(tool)
        line = err.wait_for("waiting for a lock on %s" % TABLE, proc)
        assert "held by pid %d" % pid in line, line
        for _ in range(3):  # across several of our attempts
            assert _reader_succeeds(url, backend) < 3
            time.sleep(0.7)
        assert proc.poll() is None, err.text()
    proc.wait(timeout=120)
    done = su.Done(proc.returncode, proc.stdout.read(), err.text())
    assert done.code == 0, done
    assert su.version(url) == su.HEAD
    assert migrate_util.schema_diff(url, su.HEAD) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_lock_wait_gives_up_after_lock_timeout_naming_the_holder(
        backend, make_db, tmp_path):
    """With lock_timeout spent, the step fails cleanly (exit 7, nothing
    of 031 applied) and the error names the session holding the lock.

    Without a backup: restoring one would wait for the same lock (the
    holder still holds it) and fail with its own code, 9.
    """
    url = make_db(backend)
    _at_030(url)
    tool = su.Tool(url, tmp_path)
    with _share_lock_held(url, backend) as pid:
        done = tool.run("upgrade", "head", lock_timeout=4, backup=False,
                        timeout=120)
    assert done.code == 7, done
    line = done.error_line()
    assert "waiting for a lock on %s held by pid %d" % (TABLE, pid) in line \
        or "lock on %s held by pid %d" % (TABLE, pid) in line, line
    assert su.version(url) == "030"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_while_waiting_cancels_and_resumes(backend, make_db,
                                                   tmp_path):
    """SIGTERM while we wait for the lock: exit 143 within 5 s, the
    message says how to go on, nothing of ours stays queued (a reader
    gets through at once), and the same command finishes at head."""
    url = make_db(backend)
    _at_030(url)
    tool = su.Tool(url, tmp_path)
    with _share_lock_held(url, backend):
        proc, err = _start(tool)
        err.wait_for("waiting for a lock on %s" % TABLE, proc)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        took = time.monotonic() - sent
        text = err.text()
        assert proc.returncode == 143, text
        assert took < 5, took
        assert "Run the same command to resume, or" in text, text
        assert "abandon" in text
        assert "Traceback" not in text
        assert _reader_succeeds(url, backend) < 1
    su.assert_interrupted_then_resumes(tool)
