"""Plain driver connections (mistral_db_flows.dbapi)."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from mistral_db_flows import dbapi
from mistral_db_flows import exceptions
from mistral_db_flows import migration


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
    assert migration.read_version(url) == ["007"]
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
    dbapi.AFTER_EXECUTE.append(observer)
    try:
        handle.execute("CREATE TABLE t (a INTEGER)").close()
        handle.executemany("INSERT INTO t VALUES (%s)", [(1,), (2,)])
        assert handle.rows("SELECT a FROM t ORDER BY a") == [(1,), (2,)]
    finally:
        dbapi.AFTER_EXECUTE.remove(observer)
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
    real = dbapi._open
    monkeypatch.setattr(dbapi, "_open",
                        lambda u: opened.append(u) or real(u))
    settings = conf.Settings(database_url=url,
                             state_dir=str(tmp_path / "state"))
    assert api.populate(settings).state == "populated"
    assert len(opened) == 1
