"""Plain driver connections (mistral_db_flows.dbapi)."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from mistral_db_flows import dbapi
from mistral_db_flows import dbhandle
from mistral_db_flows import exceptions
from mistral_db_flows import migration
from mistral_db_flows import version_table


def test_a_quoted_sqlite_path_is_the_file_sqlalchemy_opens(tmp_path):
    """``%20`` in a SQLite URL means a space, as SQLAlchemy reads it."""
    path = tmp_path / "a b.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
        conn.execute("INSERT INTO alembic_version VALUES ('007')")
    url = "sqlite:///%s" % str(path).replace(" ", "%20")
    handle = dbapi.connect(url)
    try:
        assert handle.rows("SELECT version_num FROM alembic_version") == [
            ("007",)]
    finally:
        handle.close()
    assert version_table.read_version(url) == ["007"]
    assert not (tmp_path / "a%20b.sqlite").exists()


@pytest.mark.parametrize("url", [
    "postgresql://postgres:s3cret@127.0.0.1:1/nowhere",
    # Query options go through SQLAlchemy's raw connection.
    "postgresql+psycopg2://postgres:s3cret@127.0.0.1:1/nowhere"
    "?connect_timeout=2",
])
def test_unreachable_server_is_one_error_without_the_password(url):
    with pytest.raises(exceptions.DatabaseUnreachable) as info:
        dbapi.connect(url)
    assert "s3cret" not in str(info.value)
    assert "***" in str(info.value)


def test_observers_hear_every_statement(tmp_path):
    heard = []

    def observer(handle, statement):
        heard.append(statement)

    sqlite3.connect(tmp_path / "x.sqlite").close()
    handle = dbapi.connect("sqlite:///%s" % (tmp_path / "x.sqlite"))
    dbhandle.AFTER_EXECUTE.append(observer)
    try:
        handle.execute("CREATE TABLE t (a INTEGER)").close()
        handle.executemany("INSERT INTO t VALUES (%s)", [(1,), (2,)])
        assert handle.rows("SELECT a FROM t ORDER BY a") == [(1,), (2,)]
    finally:
        dbhandle.AFTER_EXECUTE.remove(observer)
        handle.close()
    assert heard == ["CREATE TABLE t (a INTEGER)", "INSERT INTO t VALUES (?)",
                     "SELECT a FROM t ORDER BY a"]


def test_a_sharing_block_lends_one_connection(tmp_path):
    path = tmp_path / "shared.sqlite"
    sqlite3.connect(path).close()
    url = "sqlite:///%s" % path
    with dbapi.sharing(url):
        first = dbapi.connect(url)
        first.execute("CREATE TABLE t (a INTEGER)").close()
        first.close()  # hands it back: a rollback, not a close
        second = dbapi.connect(url)
        assert second is first
        assert second.rows("SELECT COUNT(*) FROM t") == [(0,)]
        second.close()
        private = dbapi.connect(url, private=True)
        assert private is not first
        private.close()
        elsewhere = []
        worker = threading.Thread(
            target=lambda: elsewhere.append(dbapi.connect(url)))
        worker.start()
        worker.join()
        assert elsewhere[0] is not first
        elsewhere[0].close()
    with pytest.raises(sqlite3.ProgrammingError):
        first.rows("SELECT 1")  # closed with the block


def test_borrowed_work_not_committed_is_rolled_back(tmp_path):
    path = tmp_path / "shared.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
    url = "sqlite:///%s" % path
    with dbapi.sharing(url):
        handle = dbapi.connect(url)
        handle.begin()
        handle.execute("INSERT INTO t VALUES (1)").close()
        handle.close()
        handle = dbapi.connect(url)
        assert handle.rows("SELECT COUNT(*) FROM t") == [(0,)]
        handle.close()


def test_a_guarded_populate_opens_one_connection(tmp_path, monkeypatch):
    """Version reads, the backup's measurement, populate and verify all
    share the run's connection."""
    from mistral_db_flows import api
    from mistral_db_flows import conf

    url = "sqlite:///%s" % (tmp_path / "mistral.sqlite")
    migration.upgrade(url, "head")
    opened = []
    real = dbhandle.open_new
    monkeypatch.setattr(dbhandle, "open_new",
                        lambda u: opened.append(u) or real(u))
    settings = conf.Settings(database_url=url,
                             state_dir=str(tmp_path / "state"))
    assert api.populate(settings).state == "populated"
    assert len(opened) == 1


def test_sqlalchemy_and_driver_share_one_connection_in_a_run(db_url):
    """In a sharing block the SQLAlchemy Connection is the run's, kept
    between borrowers, and (PostgreSQL, MySQL) on the very driver
    connection the handle uses; SQLite gets a second one (autocommit
    handle vs pysqlite's own transactions for batch mode)."""
    migration.upgrade(db_url, "001")
    with dbapi.sharing(db_url) as run:
        with dbapi.sqlalchemy_connection(db_url) as first:
            assert version_table.current_revisions(first) == ["001"]
        with dbapi.sqlalchemy_connection(db_url) as second:
            assert second is first and not first.in_transaction()
        handle = dbapi.connect(db_url)
        assert handle is run.handle()
        raw = first.connection.dbapi_connection
        assert (raw is handle.conn) == (not db_url.startswith("sqlite"))
        assert version_table.read_version(db_url) == ["001"]
        handle.close()
    assert first.closed


def test_a_failed_borrower_discards_the_run_connection(db_url):
    """An error in the block: the connection is not trusted again, the
    next borrower (SQLAlchemy or driver) gets a new one."""
    migration.upgrade(db_url, "001")
    with dbapi.sharing(db_url) as run:
        handle = run.handle()
        with pytest.raises(RuntimeError):
            with dbapi.sqlalchemy_connection(db_url) as conn:
                raise RuntimeError("a step failed")
        assert conn.closed
        with dbapi.sqlalchemy_connection(db_url) as again:
            assert again is not conn
        assert dbapi.connect(db_url) is not handle


def test_no_run_no_other_thread_shares(tmp_path):
    """Outside a block a borrower gets its own connection, closed after;
    a run's block lends nothing to another thread (a second run there
    has its own)."""
    url = "sqlite:///%s" % (tmp_path / "x.sqlite")
    sqlite3.connect(tmp_path / "x.sqlite").close()
    with dbapi.sqlalchemy_connection(url) as alone:
        pass
    assert alone.closed
    with dbapi.sharing(url) as run:
        mine = run.sqlalchemy()
        seen = []

        def elsewhere():
            assert dbapi.active(url) is None
            with dbapi.sharing(url) as other:
                with dbapi.sqlalchemy_connection(url) as conn:
                    seen.append((other, conn))

        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
        assert seen and seen[0][0] is not run and seen[0][1] is not mine
        assert seen[0][1].closed and not mine.closed
        with dbapi.sharing(url) as nested:  # a run in the run
            assert nested is run
        assert not mine.closed


def test_a_guarded_upgrade_opens_one_connection_for_its_steps(
        db_url, tmp_path, monkeypatch):
    """Version reads, the backup's measurement, every migrate step and
    verify borrow the run's connection; only the lock has its own."""
    from mistral_db_flows import api
    from mistral_db_flows import conf

    migration.upgrade(db_url, "001")  # a database to back up
    opened, private, engines = [], [], []
    real_open, real_connect = dbhandle.open_new, dbapi.connect
    real_sqlalchemy = migration.connect
    monkeypatch.setattr(dbhandle, "open_new",
                        lambda u: opened.append(u) or real_open(u))

    def connect(u, **kw):
        if kw.get("private"):
            private.append(u)
        return real_connect(u, **kw)

    def open_sqlalchemy(u, **kw):
        engines.append("creator" in kw)
        return real_sqlalchemy(u, **kw)

    monkeypatch.setattr(dbapi, "connect", connect)
    monkeypatch.setattr(migration, "connect", open_sqlalchemy)
    settings = conf.Settings(database_url=db_url,
                             state_dir=str(tmp_path / "state"))
    assert api.upgrade(settings, "004").state == "upgraded"
    assert version_table.read_version(db_url) == ["004"]
    # SQLite's backup copies the file: its run may open no handle.
    assert len(opened) - len(private) <= 1
    shared = not db_url.startswith("sqlite")
    assert engines == [shared]
