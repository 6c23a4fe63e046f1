"""One database, many URLs: one identity, one lock, one logbook.

The identity is asked of the server (PostgreSQL's system identifier,
MariaDB's host name and port, the SQLite file's real path) plus the
database's name: ``localhost`` or ``127.0.0.1``, a port written or not,
a driver named or not, a Unix socket, another user all give the same.
A run killed through one spelling is shown by ``status`` and resumed
through another; two spellings contend for one lock. Output masks only
the password field of URLs: ``history`` reads the same whatever the
password is.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import uuid

import pytest
import sqlalchemy as sa

from mistral_db_flows import cli
from mistral_db_flows import exceptions
from mistral_db_flows import identity
from mistral_db_flows import locking
from mistral_db_flows import logbook
from mistral_db_flows import urls
from tests import dbs
from tests.functional import safety_util as su

PG_SOCKET = "/var/run/postgresql"
MYSQL_SOCKET = "/run/mysqld/mysqld.sock"


def _spelled(url: str, **parts) -> str:
    return urls.parse(url).replace(**parts).text


@pytest.fixture
def other_user():
    """Factory: a second user (no password) allowed into a database;
    dropped afterwards."""
    made = []

    def make(backend: str, database: str) -> str:
        made.append((backend, dbs.add_user(backend, database)))
        return made[-1][1]

    yield make
    for backend, user in made:
        dbs.drop_user(backend, user)


def _pg_spellings(url: str, user: str) -> list[str]:
    """Eight URLs of one PostgreSQL database (the socket one when the
    socket is here)."""
    base = urls.parse(url)  # postgresql+psycopg2://postgres@127.0.0.1:5432
    db = base.database
    found = [
        url,
        "postgresql://postgres@127.0.0.1:5432/%s" % db,
        "postgresql+psycopg2://postgres@127.0.0.1/%s" % db,
        "postgresql://postgres@localhost/%s" % db,
        # trusted: the password is sent, never needed
        "postgresql://postgres:SECRETPW123@localhost:5432/%s" % db,
        "postgresql://postgres@127.0.0.1/%s?sslmode=disable" % db,
        "postgresql://%s@127.0.0.1:5432/%s" % (user, db),
    ]
    if os.path.exists(os.path.join(PG_SOCKET, ".s.PGSQL.5432")):
        found.append("postgresql://postgres@/%s?host=%s" % (db, PG_SOCKET))
    return found


def _mysql_spellings(url: str, user: str) -> list[str]:
    db = urls.parse(url).database
    found = [
        url,
        "mysql+pymysql://root@127.0.0.1/%s" % db,
        "mariadb+pymysql://root@127.0.0.1:3306/%s" % db,
        "mysql+pymysql://root@localhost/%s" % db,
        # no driver named, and an option only SQLAlchemy translates:
        # both opened through SQLAlchemy
        "mysql://root@127.0.0.1/%s" % db,
        "mysql+pymysql://root@127.0.0.1/%s?connect_timeout=5" % db,
        "mysql+pymysql://%s@127.0.0.1/%s" % (user, db),
    ]
    if os.path.exists(MYSQL_SOCKET):
        found.append("mysql+pymysql://root@/%s?unix_socket=%s"
                     % (db, MYSQL_SOCKET))
    return found


@pytest.mark.parametrize("backend", [
    pytest.param("postgresql", marks=[pytest.mark.postgresql]),
    pytest.param("mysql", marks=[pytest.mark.mysql])])
def test_every_spelling_of_one_database_has_one_identity(
        backend, make_db, other_user):
    """At least six URLs of one PostgreSQL database, and six of one
    MariaDB database (host names, ports, drivers, sockets, options,
    another user), give one identity; another database another one.
    No identity holds a user or password."""
    url = make_db(backend)
    user = other_user(backend, urls.parse(url).database)
    spellings = (_pg_spellings if backend == "postgresql"
                 else _mysql_spellings)(url, user)
    assert len(spellings) >= 6
    found = {text: identity.of_url(text) for text in spellings}
    assert len(set(found.values())) == 1, found
    ident = found[url]
    assert ident.startswith(backend + ":")
    assert ident.endswith("/" + urls.parse(url).database)
    for secret in ("SECRETPW123", user, "root@", "postgres@"):
        assert secret not in ident
    assert identity.of_url(make_db(backend)) != ident
    # The legacy (spelled) identities of the same URLs differ: that is
    # what made one run invisible through another spelling.
    assert len({identity.legacy(text) for text in spellings}) > 1


def _lock_spellings(backend: str, url: str, tmp_path, monkeypatch):
    """Two spellings of one database, for the lock and the runs."""
    if backend == "sqlite":
        path = urls.parse(url).database
        (tmp_path / "via").symlink_to(os.path.dirname(path))
        monkeypatch.chdir(tmp_path)
        return url, "sqlite:///via/%s" % os.path.basename(path)
    if backend == "postgresql":
        return url, "postgresql://postgres:pw@localhost/%s" \
            % urls.parse(url).database
    return url, "mariadb+pymysql://root@localhost:3306/%s" \
        % urls.parse(url).database


def test_two_spellings_contend_for_one_lock(backend, db_url, tmp_path,
                                            monkeypatch):
    """A run holding the lock through one URL keeps a run through
    another URL of the same database out; the lock is named after the
    identity, without credentials."""
    first_url, second_url = _lock_spellings(backend, db_url, tmp_path,
                                            monkeypatch)
    with locking.hold(first_url, timeout=5, owner="first") as first:
        assert first.identity == identity.of_url(second_url)
        assert "pw@" not in first.name
        if backend != "sqlite":  # a file's path is its name
            assert "root" not in first.name
            assert "postgres:" not in first.name
        with pytest.raises(exceptions.LockTimeout):
            with locking.hold(second_url, timeout=0.3, owner="second"):
                pytest.fail("two spellings held the lock at once")
    with locking.hold(second_url, timeout=0, owner="second") as second:
        assert (second.identity, second.name) == (first.identity,
                                                  first.name)


# Servers slow: SQLite's variant checks the kill and resume, and
# test_every_spelling_of_one_database_has_one_identity that the
# servers' spellings share one identity.
@pytest.mark.parametrize("backend", [
    "sqlite",
    pytest.param("postgresql", marks=[pytest.mark.postgresql,
                                      pytest.mark.slow]),
    pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.slow])])
def test_run_killed_through_one_spelling_resumes_through_another(
        backend, make_db, tmp_path, monkeypatch):
    """Killed through one URL, the run is shown by ``status`` and
    resumed through another URL of the same database; the resumed run
    keeps the first backup (never one of the half-migrated database)
    and its backups share one key."""
    su.require_fault_plugins()
    url = make_db(backend)
    su.prepare(url, "040")
    first_url, second_url = _lock_spellings(backend, url, tmp_path,
                                            monkeypatch)
    first = su.Tool(first_url, tmp_path / "runs", backup="full")
    # The same state dir.
    second = su.Tool(second_url, tmp_path / "runs", backup="full")
    killed = first.run("upgrade", "head", fault="before:migrate_043:kill")
    assert killed.code == -signal.SIGKILL, killed
    status = second.run("status")
    assert status.code == 10, status
    assert status.doc["interrupted"]["step"] == "migrate_043"
    assert status.doc["interrupted"]["state"] == "running"
    backups = sorted(p for p in (first.state_dir / "backups").iterdir()
                     if not p.name.endswith(".sha256"))
    assert len(backups) == 1
    resumed = second.run("upgrade", "head")
    assert resumed.code == 0, resumed
    assert resumed.doc["resumed"] is True
    assert resumed.doc["start_revision"] == "040"
    assert resumed.doc["backup"] == str(backups[0])
    assert sorted(p for p in (first.state_dir / "backups").iterdir()
                  if not p.name.endswith(".sha256")) == backups
    assert su.version(url) == su.HEAD
    assert first.run("status").code == 0


@pytest.mark.postgresql
def test_run_recorded_by_an_earlier_build_is_still_found(make_db, tmp_path):
    """A run an earlier build recorded under its spelled identity (the
    logbook book it named by it) is shown and resumed by this one."""
    su.require_fault_plugins()
    url = make_db("postgresql")
    su.prepare(url, "040")
    tool = su.Tool(url, tmp_path)
    killed = tool.run("upgrade", "head", fault="before:migrate_043:kill")
    assert killed.code == -signal.SIGKILL, killed
    _move_to_legacy_book(tool.state_dir / "logbook.sqlite", url)
    status = tool.run("status")
    assert status.code == 10, status
    assert status.doc["interrupted"]["step"] == "migrate_043"
    resumed = tool.run("upgrade", "head")
    assert resumed.code == 0, resumed
    assert resumed.doc["resumed"] is True
    assert tool.run("status").code == 0


def _move_to_legacy_book(path, url: str) -> None:
    """Rewrite the logbook as an earlier build left it: the runs in the
    book named by the spelled identity."""
    new = logbook.book_uuid(identity.of_url(url))
    old_name = identity.legacy(url)
    old = logbook.book_uuid(old_name)
    conn = sqlite3.connect(str(path))
    try:
        with conn:
            book = json.loads(conn.execute(
                "SELECT value FROM mdf_logbook WHERE path = ?",
                ("/books/" + new,)).fetchone()[0])
            book.update(name=old_name, uuid=old)
            for column in ("path", "parent"):
                conn.execute(
                    "UPDATE mdf_logbook SET %s = replace(%s, ?, ?) "
                    "WHERE %s LIKE ?" % (column, column, column),
                    ("/books/" + new, "/books/" + old,
                     "/books/" + new + "%"))
            conn.execute("UPDATE mdf_logbook SET value = ? WHERE path = ?",
                         (json.dumps(book), "/books/" + old))
            moved = conn.execute(
                "SELECT count(*) FROM mdf_logbook WHERE parent = ?",
                ("/books/" + old,)).fetchone()[0]
    finally:
        conn.close()
    assert moved == 1


# -- output: the password field only ----------------------------------------

_MASKED_URL = re.compile(r"\b[a-z][\w+]*://[^\s:/]*:\*\*\*@\S*")


def _run_cli(capsys, url: str, tmp_path, *argv: str) -> tuple[int, str,
                                                                str]:
    conf = tmp_path / ("%s.conf" % uuid.uuid4().hex[:8])
    conf.write_text("[database]\nconnection = %s\n[db_manage]\n"
                    "state_dir = %s\n" % (url, tmp_path / "state"))
    code = cli.main(["--config-file", str(conf), *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.postgresql
@pytest.mark.parametrize("password", ("mistral", "e", "SECRETPW123"))
def test_output_hides_the_password_field_only(password, make_db, tmp_path,
                                              capsys):
    """With the password ``mistral``, ``e`` or ``SECRETPW123`` (the test
    server trusts local users: sent, never needed), ``history`` prints
    the same text as without one; in the output of a run no ``***``
    stands anywhere but in a URL's password field, every path printed
    exists, and JSON output hides URL passwords too."""
    plain = make_db("postgresql")
    url = _spelled(plain, password=password)
    code, history, err = _run_cli(capsys, url, tmp_path, "history")
    assert code == 0 and err == ""
    assert history == _run_cli(capsys, plain, tmp_path, "history")[1]
    assert "mistral" in history and "***" not in history

    # With a dump, so that the output names a file to check.
    code, out, err = _run_cli(capsys, url, tmp_path, "upgrade", "head",
                              "--backup", "full")
    assert code == 0, err
    code, verbose, _ = _run_cli(capsys, url, tmp_path, "current", "-v")
    assert code == 0
    assert "postgres:***@127.0.0.1:5432/" in verbose
    text = out + err + verbose
    assert "***" not in _MASKED_URL.sub("", text), text
    paths = re.findall(r"(?<![\w:])(/[\w./~-]+)", _MASKED_URL.sub("", text))
    assert paths, text
    for path in paths:
        assert os.path.exists(path), (path, text)

    down = _spelled(url, host="127.0.0.1", port=1)
    code, out, err = _run_cli(capsys, down, tmp_path, "--format", "json",
                              "current")
    assert code == 3
    message = json.loads(out)["error"]["message"]
    assert "postgres:***@127.0.0.1:1/" in message
    assert ":%s@" % password not in out + err


@pytest.mark.postgresql
def test_logbook_in_the_target_is_refused_whatever_the_spelling(make_db):
    """``logbook_connection`` naming the Mistral database through
    another URL (``localhost`` for ``127.0.0.1``) is still the target:
    refused; another database is not."""
    url = make_db("postgresql")
    target = identity.of_url(url)
    same = "postgresql://postgres@localhost/%s" % urls.parse(url).database
    with pytest.raises(exceptions.ConfigError) as err:
        logbook.check_separate(same, target)
    assert target in str(err.value)
    logbook.check_separate(make_db("postgresql"), target)
