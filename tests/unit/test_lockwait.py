"""lockwait without a database: which errors are lock timeouts, which
table a statement changes, and how a step's attempts wait, tell and
give up."""
from __future__ import annotations

import pytest

from mistral_db_flows import exceptions
from mistral_db_flows import lockwait


class PgError(Exception):
    def __init__(self, pgcode):
        super().__init__("canceling statement due to lock timeout")
        self.pgcode = pgcode


class Wrapped(Exception):
    """As SQLAlchemy wraps a driver's error: ``orig`` and ``statement``."""

    def __init__(self, orig, statement=None):
        super().__init__(str(orig))
        self.orig = orig
        self.statement = statement


@pytest.mark.parametrize("error, expected", [
    (PgError("55P03"), True),
    (Wrapped(PgError("55P03")), True),
    (PgError("57014"), False),  # cancelled: a signal, not a lock wait
    (Wrapped(Exception(1205, "Lock wait timeout exceeded")), True),
    (Wrapped(Exception(1213, "Deadlock found")), False),
    (ValueError("no"), False),
])
def test_is_lock_timeout(error, expected):
    assert lockwait.is_lock_timeout(error) is expected


@pytest.mark.parametrize("statement, table", [
    ("ALTER TABLE task_executions_v2 ADD COLUMN x INT", "task_executions_v2"),
    ('ALTER TABLE ONLY "workflow_executions_v2" ADD x',
     "workflow_executions_v2"),
    ("CREATE UNIQUE INDEX ix ON `delayed_calls_v2` (key)", "delayed_calls_v2"),
    ("DROP INDEX ix ON action_executions_v2", "action_executions_v2"),
    ("UPDATE alembic_version SET version_num='031'", "alembic_version"),
    ("DELETE FROM delayed_calls_v2 WHERE key IS NULL", "delayed_calls_v2"),
    ("SELECT 1", None),
])
def test_table_of_the_statement_that_timed_out(statement, table):
    assert lockwait.table_of(Wrapped(PgError("55P03"), statement)) == table


class Clock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeConn:
    """Counts rollbacks; holder() is patched, so nothing is queried."""

    def __init__(self):
        self.rollbacks = 0

    def rollback(self):
        self.rollbacks += 1


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(lockwait.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(lockwait.time, "sleep", clock.sleep)
    monkeypatch.setattr(lockwait, "holder", lambda conn, table: {
        "pid": 4711, "application": "psql", "client": "10.0.0.5",
        "since": "2026-12-06T04:00:00"})
    return clock


def _timing_out(clock, times, statement_wait=2.0):
    """An attempt that times out on a lock ``times`` times, each after
    the statement lock timeout, then succeeds; records its arguments."""
    calls = []

    def attempt(careful):
        calls.append(careful)
        clock.now += statement_wait
        if len(calls) <= times:
            raise Wrapped(PgError("55P03"),
                          "ALTER TABLE task_executions_v2 ADD x INT")
        return "done"
    return attempt, calls


def test_waits_retry_carefully_and_tell_who_holds_the_lock(clock):
    """Each timeout is rolled back and retried (carefully: MariaDB may
    have kept part of the revision); the holder is told at once and
    then every 10 s, not at every attempt."""
    conn, heard = FakeConn(), []
    waits = lockwait.Waits(conn, lockwait.Budget(2.0, 300), "m",
                           lambda text: heard.append((clock.now, text)))
    attempt, calls = _timing_out(clock, 8)
    assert waits.retry(attempt, careful=False) == "done"
    assert calls == [False] + [True] * 8
    assert conn.rollbacks == 8
    assert heard[0] == (2.0, "waiting for a lock on task_executions_v2 held "
                        "by pid 4711 (psql, 10.0.0.5, 2026-12-06T04:00:00)")
    times = [when for when, _ in heard]
    assert all(b - a >= lockwait.REPORT_EVERY
               for a, b in zip(times, times[1:])), times
    assert len(heard) < 8


def test_waits_give_up_when_the_budget_is_spent(clock):
    """Past the run's lock_timeout: LockWaitTimeout naming the table
    and the holder (exit code 7)."""
    waits = lockwait.Waits(FakeConn(), lockwait.Budget(2.0, 9), "m",
                           lambda text: None)
    attempt, calls = _timing_out(clock, 1000)
    with pytest.raises(exceptions.LockWaitTimeout) as err:
        waits.retry(attempt, careful=False)
    assert err.value.table == "task_executions_v2"
    assert err.value.holder["pid"] == 4711
    assert err.value.waited >= 9
    assert err.value.exit_code == 7
    assert "held by pid 4711" in str(err.value)
    assert len(calls) < 10


def test_other_errors_are_not_retried(clock):
    waits = lockwait.Waits(FakeConn(), lockwait.Budget(2.0, 300), "m",
                           lambda text: None)

    def attempt(careful):
        raise ValueError("a real failure")

    with pytest.raises(ValueError):
        waits.retry(attempt, careful=False)
