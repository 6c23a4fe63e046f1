"""The run lock without a server: URL reading, the lock session's
autocommit (or commit after every statement), and how a MariaDB/MySQL
holder is described."""
from __future__ import annotations

import pytest

from mistral_db_flows import dbapi
from mistral_db_flows import exceptions
from mistral_db_flows import locking
from mistral_db_flows.locking import mysql
from mistral_db_flows.locking import server
from tests import fresh


class FakeError(Exception):
    pass


class FakeCursor:
    def __init__(self, conn):
        self.conn = conn
        self.row = None

    def execute(self, statement, params):
        self.row = self.conn.answer(statement, params)

    def fetchone(self):
        return self.row

    def close(self):
        pass


class FakeConn:
    """A DB-API connection answering from ``answers`` (statement prefix
    -> row, or an exception to raise), recording what it is asked."""

    Error = FakeError

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.log = []

    def answer(self, statement, params):
        self.log.append(statement)
        for prefix, row in self.answers.items():
            if statement.startswith(prefix):
                if isinstance(row, Exception):
                    raise row
                return row
        return None

    def cursor(self):
        return FakeCursor(self)

    def commit(self):
        self.log.append("COMMIT")

    def rollback(self):
        self.log.append("ROLLBACK")

    def close(self):
        self.log.append("CLOSE")


def _with_fake(lock, conn, autocommit):
    lock.handle = dbapi.Handle(conn, lock.backend, qmark=False)
    lock._errors = (conn.Error,)
    lock._autocommit = autocommit
    return lock


def test_unusual_urls_name_the_same_lock():
    """A URL only SQLAlchemy can read names the same lock as the plain
    one of the same database: the name comes from the database's
    identity (asked of the server: see test_locking), not the URL."""
    ident = "postgresql:7716/mistral"
    plain = locking.lock_for("postgresql://u:pw@h/mistral", "x",
                             identity=ident)
    unusual = locking.lock_for(
        "postgresql+psycopg2://u:pw@h/mistral?sslmode=require", "x",
        identity=ident)
    assert (plain.key, plain.name) == (unusual.key, unusual.name)
    assert plain.name == "mistral-db-flows:" + ident
    ident = "mysql:vm:3306/mistral"
    a = locking.lock_for("mysql+pymysql://u@h/mistral?charset=utf8", "x",
                         identity=ident)
    b = locking.lock_for("mariadb+pymysql://u@[::1]:3306/mistral", "x",
                         identity=ident)
    assert isinstance(a, mysql.MysqlLock)
    assert isinstance(b, mysql.MysqlLock)
    assert a.name == b.name == "mistral-db-flows:mysql:vm:3306/mistral"


def test_unknown_backend_is_refused():
    with pytest.raises(exceptions.LockError) as err:
        locking.lock_for("oracle://u@h/mistral", "x")
    assert "cannot lock a oracle database" in str(err.value)


def test_lock_for_a_plain_url_does_not_import_sqlalchemy():
    assert not fresh.imports_sqlalchemy(
        "from mistral_db_flows import locking\n"
        "locking.lock_for('postgresql://u@h/m', 'x')\n"
        "locking.lock_for('mysql+pymysql://u@h/m', 'x')\n"
        "locking.lock_for('sqlite:////tmp/m.db', 'x')")


def test_autocommit_is_switched_on_whatever_the_driver_calls_it():
    class Method:           # PyMySQL, mysqlclient
        def __init__(self):
            self.on = None

        def autocommit(self, value):
            self.on = value

    class Attribute:        # psycopg2, pg8000
        autocommit = False

    class Neither:
        __slots__ = ()

    method, attribute = Method(), Attribute()
    assert server._set_autocommit(method) and method.on is True
    assert server._set_autocommit(attribute) and attribute.autocommit
    assert not server._set_autocommit(Neither())


def test_without_autocommit_every_statement_is_ended():
    """A driver without autocommit: each statement is committed, a
    failed one rolled back, so the session never idles in a
    transaction."""
    conn = FakeConn({"SELECT pg_try": (True,),
                     "SELECT count": FakeError("server closed")})
    lock = _with_fake(locking.lock_for("postgresql://u@h/m", "x"), conn,
                      autocommit=False)
    assert lock._value("SELECT pg_try_advisory_lock(%s)", (lock.key,))
    assert conn.log[-1] == "COMMIT"
    with pytest.raises(exceptions.LockError) as err:
        lock.check()
    assert conn.log[-1] == "ROLLBACK"
    assert str(err.value) == ("lost the lock on database m: "
                              "server closed")
    lock.release()
    assert conn.log[-1] == "CLOSE" and lock.handle is None
    with pytest.raises(exceptions.LockError):
        lock.check()


def test_with_autocommit_nothing_is_committed():
    conn = FakeConn({"SELECT IS_USED_LOCK": (1,)})
    lock = _with_fake(locking.lock_for("mysql+pymysql://u@h/m", "x"), conn,
                      autocommit=True)
    lock.check()
    assert "COMMIT" not in conn.log


def test_mysql_holder_names_its_pid_when_the_server_shows_it():
    """The holder is the session of IS_USED_LOCK in the shape of every
    session (sessions.describe): pid is the connection id, the client
    without its port; the performance schema (on in MySQL, off by
    default in MariaDB) adds the pid its client library sent."""
    conn = FakeConn({
        "SELECT l.id": (42, None, "10.0.0.5:51000", "mistral", None),
        "SELECT attr_value": ("4242",)})
    lock = _with_fake(locking.lock_for("mysql+pymysql://u@h/m", "x"), conn,
                      autocommit=True)
    holder = lock._holder()
    assert holder == {"pid": 42, "application": None, "client": "10.0.0.5",
                      "user": "mistral", "since": None, "client_pid": 4242}
    text = str(lock._timeout(3, holder))
    assert "locked by pid 42 (10.0.0.5, client pid 4242)" in text


@pytest.mark.parametrize("attrs", [None, FakeError("no access")])
def test_mysql_holder_without_performance_schema(attrs):
    conn = FakeConn({
        "SELECT l.id": (42, None, "10.0.0.5:51000", "mistral", None),
        "SELECT attr_value": attrs})
    lock = _with_fake(locking.lock_for("mysql+pymysql://u@h/m", "x"), conn,
                      autocommit=True)
    assert lock._holder() == {"pid": 42, "application": None,
                              "client": "10.0.0.5", "user": "mistral",
                              "since": None}


def test_mysql_lock_free_has_no_holder():
    """IS_USED_LOCK says nobody: no row, no holder."""
    conn = FakeConn({"SELECT l.id": None})
    lock = _with_fake(locking.lock_for("mysql+pymysql://u@h/m", "x"), conn,
                      autocommit=True)
    assert lock._holder() is None


def test_unreachable_server_is_a_lock_error_without_password():
    lock = locking.lock_for(
        "postgresql://u:s3cret@127.0.0.1:1/m", "x")
    with pytest.raises(exceptions.LockError) as err:
        lock.acquire(0)
    text = str(err.value)
    assert text.startswith("cannot connect to take the lock on database m:")
    assert "s3cret" not in text
    assert lock.handle is None


class Clock:
    """time.monotonic for the waits, moved by what they wait."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_wait_is_said_at_once_and_every_ten_seconds(monkeypatch):
    """Lock._waiting tells on_wait before its first wait and after each
    ten seconds of it, until the timeout, then gives up."""
    from mistral_db_flows.locking import base

    clock = Clock()
    monkeypatch.setattr(base.time, "monotonic", clock)
    lock = base.Lock("sqlite://", "m", "upgrade")
    lock._holder = lambda: {"pid": 42}
    heard = []
    waits = []

    def try_for(seconds):
        waits.append(seconds)
        clock.now += seconds
        return False

    got = lock._waiting(try_for, 25, lambda text: heard.append(
        (clock.now, text)))
    assert got is False
    assert waits == [0, 10, 10, 5]
    assert [when for when, _ in heard] == [0, 10, 20]
    assert "held by pid 42 " in heard[0][1]
    assert "waited 10 s of 25 s" in heard[1][1]


def test_a_lock_taken_at_once_says_nothing():
    from mistral_db_flows.locking import base

    heard = []
    lock = base.Lock("sqlite://", "m", "upgrade")
    assert lock._waiting(lambda seconds: True, 5, heard.append) is True
    assert heard == []
