"""The fence on a run's connection, on a real database: the lock is
checked wherever a change becomes durable, and only there.

Every check is a round trip on the lock's session; the cost of a
guarded upgrade of an empty MariaDB database was mostly these checks
(docs/benchmarks.md). What must hold: nothing commits after a failed
check, a MySQL schema statement (which commits by itself) never runs
after one, and a failed statement is checked (a write that fails
because another run moved the schema halts the run)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from mistral_db_flows import fencing
from mistral_db_flows import migration
from tests import migrate_util

BACKENDS = ["sqlite",
            pytest.param("postgresql", marks=pytest.mark.postgresql),
            pytest.param("mysql", marks=pytest.mark.mysql)]


class Lock:
    """A stand-in for the run's lock: counts checks, can be lost."""

    def __init__(self) -> None:
        self.checks = 0
        self.lost = False

    def check(self) -> None:
        self.checks += 1
        if self.lost:
            raise LookupError("lost the lock")


@pytest.fixture
def fenced(backend, make_db):
    url = make_db(backend)
    conn = migration.connect(url)
    lock = Lock()
    fencing.attach(conn, lock.check)
    yield url, conn, lock
    conn.close()
    conn.engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_checks_only_where_a_change_becomes_durable(fenced, backend):
    """Reads commit unchecked; a row write is checked once, at its
    commit; a schema statement before it runs on MySQL (and at the
    commit elsewhere); a rolled-back write needs no check."""
    url, conn, lock = fenced
    mysql = backend == "mysql"
    conn.exec_driver_sql("SELECT 1")
    conn.commit()
    assert lock.checks == 0
    conn.exec_driver_sql("CREATE TABLE fenced (id INTEGER PRIMARY KEY)")
    assert lock.checks == (1 if mysql else 0)
    conn.commit()
    assert lock.checks == (2 if mysql else 1)
    lock.checks = 0
    conn.exec_driver_sql("INSERT INTO fenced (id) VALUES (1)")
    conn.exec_driver_sql("UPDATE fenced SET id = 2")
    assert lock.checks == 0
    conn.commit()
    assert lock.checks == 1
    conn.exec_driver_sql("INSERT INTO fenced (id) VALUES (3)")
    conn.rollback()
    conn.commit()
    assert lock.checks == 1
    assert migrate_util.rows(url, "SELECT id FROM fenced") == [(2,)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_nothing_becomes_durable_after_the_lock_is_lost(fenced, backend):
    """Lost lock: the commit of a row write is refused (the row never
    shows), a MySQL schema statement is refused before it runs, and a
    failing statement's error becomes the lost lock's."""
    url, conn, lock = fenced
    conn.exec_driver_sql("CREATE TABLE fenced (id INTEGER PRIMARY KEY)")
    conn.commit()
    lock.lost = True
    conn.exec_driver_sql("INSERT INTO fenced (id) VALUES (1)")
    with pytest.raises(LookupError):
        conn.commit()
    conn.rollback()
    assert migrate_util.rows(url, "SELECT id FROM fenced") == []
    if backend == "mysql":
        with pytest.raises(LookupError):
            conn.exec_driver_sql("CREATE TABLE other (id INTEGER)")
        assert "other" not in sa.inspect(conn).get_table_names()
    with pytest.raises(LookupError):
        conn.exec_driver_sql("INSERT INTO missing_table (id) VALUES (1)")
    conn.rollback()


@pytest.mark.parametrize("backend", BACKENDS)
def test_confirm_calls_the_attached_check(fenced):
    """``confirm`` (a migrate step before it treats an error as its
    failure) asks the lock; a connection without a fence has nothing
    to ask."""
    url, conn, lock = fenced
    fencing.confirm(conn)
    assert lock.checks == 1
    lock.lost = True
    with pytest.raises(LookupError):
        fencing.confirm(conn)
    bare = migration.connect(url)
    try:
        fencing.confirm(bare)
    finally:
        bare.close()
        bare.engine.dispose()
