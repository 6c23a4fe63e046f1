"""Backup and lock logic that needs no database server.

File names, credentials handed to the tools, error messages, retention
and the checks made before any change.
"""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys

import pytest

from mistral_db_flows import backup
from mistral_db_flows import exceptions
from mistral_db_flows import locking
from mistral_db_flows import urls
from mistral_db_flows.backup import common
from mistral_db_flows.backup import mysql
from mistral_db_flows.backup import postgresql

PASSWORD = 'p#ss "w0rd"\\ \'x\' \tend'
PG_URL = "postgresql+psycopg2://mistral:pw@db.example:6543/mistral"
WHEN = datetime.datetime(2025, 1, 2, 3, 4, 5, 678901,
                         tzinfo=datetime.timezone.utc)


def _url(text: str, **parts):
    return urls.parse(text).replace(**parts)


def test_file_name_has_database_key_time_and_label_only():
    """The name is <db>-<identity hash>-<UTC time>-<label>.<ext>; the
    user and password never appear, odd characters are replaced."""
    name = common.file_name(_url(PG_URL), "upgrade to 045/x", WHEN,
                            identity="postgresql:7716/mistral")
    assert name.startswith("mistral-")
    assert name.endswith("-20250102T030405678901Z-upgrade_to_045_x.pgdump")
    assert common.NAME_RE.match(name)
    assert "pw" not in name and "@" not in name


def test_file_key_is_the_identity_not_the_spelling():
    """Two spellings of one database (one identity) share a key, so
    their backups are pruned together; two databases do not."""
    other = "postgresql+psycopg2://u:x@127.0.0.1:5432/mistral"
    a = common.file_name(_url(PG_URL), "x", WHEN, identity="pg:1/mistral")
    b = common.file_name(_url(other), "x", WHEN, identity="pg:1/mistral")
    c = common.file_name(_url(PG_URL), "x", WHEN, identity="pg:2/mistral")
    assert a == b != c


def test_in_memory_sqlite_cannot_be_backed_up():
    """An in-memory database has no file to back up: a clear error."""
    with pytest.raises(exceptions.BackupError) as err:
        backup.take("sqlite://", "/tmp", label="x")
    assert err.value.reason == "unsupported"


def test_postgresql_password_only_in_the_environment():
    """pg_dump gets the password (and user) through libpq variables,
    never on its command line."""
    u = _url(PG_URL, password=PASSWORD, query=(("sslmode", "require"),))
    env = postgresql.environment(u)
    assert env["PGPASSWORD"] == PASSWORD
    assert env["PGUSER"] == "mistral" and env["PGHOST"] == "db.example"
    assert env["PGPORT"] == "6543" and env["PGSSLMODE"] == "require"


def test_postgresql_dump_command_line_has_no_credentials(monkeypatch):
    """The argv handed to pg_dump holds options only."""
    seen = {}

    def fake_run(argvs, **kwargs):
        seen["argvs"] = argvs
        seen["env"] = kwargs["env"]

    monkeypatch.setattr(common, "run", fake_run)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    u = _url(PG_URL, password=PASSWORD)
    postgresql.dump(u, 1, "/dev/null")
    flat = " ".join(seen["argvs"])
    assert PASSWORD not in flat and "mistral" not in flat
    assert seen["env"]["PGPASSWORD"] == PASSWORD


@pytest.mark.skipif(not shutil.which("mariadb") and not shutil.which("mysql"),
                    reason="needs the MariaDB/MySQL client")
def test_mysql_option_file_survives_odd_passwords(tmp_path):
    """The client reads back exactly the password we wrote, whatever
    quotes, backslashes, '#' or tabs it holds; the file is 0600."""
    u = _url("mysql+pymysql://mistral@db.example:3307/mistral",
             password=PASSWORD)
    with mysql.option_file(u) as path:
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == \
            "0o700"
        client = shutil.which("mariadb") or shutil.which("mysql")
        out = subprocess.run(
            [client, "--defaults-extra-file=" + path, "--print-defaults"],
            capture_output=True, text=True, check=True).stdout
    assert "--password=%s" % PASSWORD in out
    assert "--host=db.example" in out and "--port=3307" in out
    assert "--protocol=TCP" in out
    assert not os.path.exists(path)


def test_tool_errors_never_show_the_password():
    """A tool that echoes a URL or a connection string on stderr has
    its password masked."""
    with pytest.raises(exceptions.BackupError) as err:
        common.run([sys.executable, "-c",
                    "import sys; sys.stderr.write('bad %s password=%s'"
                    " % (sys.argv[1], sys.argv[2])); sys.exit(3)",
                    "postgresql://u:hunter2@h/db", "hunter2"],
                   env=dict(os.environ), error=exceptions.BackupError,
                   database="db", what="the tool")
    assert "hunter2" not in str(err.value)
    assert "exited with 3" in str(err.value)
    assert "bad postgresql://u:***@h/db password=***" in str(err.value)
    assert err.value.reason == "tool-failed"


def test_missing_tool_is_named_before_connecting(monkeypatch, tmp_path):
    """With no client tools on PATH the check fails on the tools first
    (the database URL here is not even reachable)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    for url, tool in (("postgresql://u:pw@127.0.0.1:1/db", "pg_dump"),
                      ("mysql+pymysql://u:pw@127.0.0.1:1/db",
                       "mariadb-dump")):
        with pytest.raises(exceptions.BackupError) as err:
            backup.check_can_backup(url, str(tmp_path / "b"))
        assert err.value.reason == "tool-missing" and err.value.tool == tool
        assert "pw" not in str(err.value)


def test_sqlite_check_measures_the_file(tmp_path, monkeypatch):
    """For SQLite the needed space is the file's size; too little free
    space is refused with both numbers."""
    db = tmp_path / "m.sqlite"
    db.write_bytes(b"\0" * 5000)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda path: usage._replace(free=4999))
    with pytest.raises(exceptions.BackupError) as err:
        backup.check_can_backup("sqlite:///%s" % db, str(tmp_path / "b"))
    assert (err.value.needed, err.value.free) == (5000, 4999)
    assert err.value.reason == "no-space"


def test_prune_ignores_other_files_and_missing_directory(tmp_path):
    """Files not named like our backups are never touched."""
    assert backup.prune(str(tmp_path / "absent"), 1) == []
    (tmp_path / "notes.sql").write_text("x")
    (tmp_path / "mistral-zzzzzzzz-20250102T030405678901Z-x.sql").write_text(
        "not ours: key is not hex")
    assert backup.prune(str(tmp_path), 1) == []


def test_prune_sorts_by_time_not_label(tmp_path):
    """The newest backup wins whatever its label."""
    names = ["m-0123abcd-20250102T030405000000Z-zeta.sql",
             "m-0123abcd-20250103T030405000000Z-alpha.sql"]
    for name in names:
        (tmp_path / name).write_text("x")
    removed = backup.prune(str(tmp_path), 1)
    assert removed == [str(tmp_path / names[0])]


def test_lock_names_never_hold_credentials():
    """Locks are named after the database's identity; users and hosts
    do not matter, so two URLs of one database exclude each other (the
    servers' answers are tested in test_locking)."""
    a = locking.lock_for("postgresql://u:secret@h1/mistral", "x",
                         identity="postgresql:42/mistral")
    b = locking.lock_for("postgresql://v:other@h2/mistral", "x",
                         identity="postgresql:42/mistral")
    assert a.name == b.name and a.key == b.key
    assert "secret" not in a.name
    long_name = "m" * 80
    m = locking.lock_for("mysql+pymysql://u:secret@h/%s" % long_name, "x",
                         identity="mysql:vm:3306/%s" % long_name)
    assert len(m.name) <= 64 and "secret" not in m.name


def test_lock_timeout_message_names_the_holder():
    """The message says which database, who holds it and how long we
    waited; the error carries the same facts."""
    err = exceptions.LockTimeout(database="mistral", lock="l", timeout=30,
                                 owner="upgrade head",
                                 holder={"pid": 42, "client": "10.0.0.5",
                                         "user": "m"})
    assert err.exit_code == 11 and err.holder["pid"] == 42
    text = str(err)
    assert "mistral" in text and "locked by pid 42 (10.0.0.5)" in text
    assert "30s" in text


# -- URLs, read without SQLAlchemy (see also test_urls) ----------------------

def test_backup_reads_urls_as_urls_does():
    """The backup package's URL is the one value of ``urls``; one it
    cannot read is a BackupError that shows no password."""
    from mistral_db_flows import urls

    assert common.parse(PG_URL) == urls.parse(PG_URL)
    with pytest.raises(exceptions.BackupError) as err:
        common.parse("postgresql://u:hunter2@[::1]x/db")
    assert err.value.reason == "unsupported"
    assert "hunter2" not in str(err.value)


def test_plain_urls_need_no_sqlalchemy():
    """Parsing, naming and the tools' credentials of plain URLs import
    no SQLAlchemy (its import costs a tenth of a second per run)."""
    code = (
        "import datetime, sys\n"
        "from mistral_db_flows import backup\n"
        "from mistral_db_flows.backup import common, mysql, postgresql\n"
        "from mistral_db_flows import urls\n"
        "when = datetime.datetime.now(datetime.timezone.utc)\n"
        "for text in sys.argv[1:]:\n"
        "    u = common.parse(text)\n"
        "    common.file_name(u, 'x', when, identity='i')\n"
        "    urls.missing_sqlite_file(text)\n"
        "postgresql.environment(common.parse(sys.argv[1]))\n"
        "mysql.option_text(common.parse(sys.argv[2]))\n"
        "print('sqlalchemy' in sys.modules)\n")
    out = subprocess.run(
        [sys.executable, "-c", code, PG_URL,
         "mysql+pymysql://u:pw@h/m", "sqlite:////tmp/absent-mdf.sqlite"],
        capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("text, expected", (
    ("sqlite:////no/such/dir/m.sqlite", "/no/such/dir/m.sqlite"),
    ("sqlite+pysqlite:////no/such/dir/m.sqlite", "/no/such/dir/m.sqlite"),
    ("sqlite:////no/such/a%20b.sqlite", "/no/such/a b.sqlite"),
    ("sqlite:////no/such/m.sqlite?timeout=5", "/no/such/m.sqlite"),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("postgresql://u:pw@h/db", None),
    ("not a url", None),
))
def test_missing_sqlite_file_reads_the_path_as_the_backup(text, expected):
    """The absent file named is the one the backup would have read."""
    assert urls.missing_sqlite_file(text) == expected


def test_missing_sqlite_file_is_none_when_the_file_exists(tmp_path):
    db = tmp_path / "m.sqlite"
    assert urls.missing_sqlite_file("sqlite:///%s" % db) == str(db)
    db.write_bytes(b"")
    assert urls.missing_sqlite_file("sqlite:///%s" % db) is None


def test_pg_dump_version_is_asked_once_per_process(monkeypatch):
    """The tool-version check runs ``pg_dump --version`` once, however
    many checks a process makes."""
    calls = []
    real = subprocess.Popen

    def popen(argv, *args, **kwargs):
        calls.append(list(argv))
        return real([sys.executable, "-c",
                     "print('pg_dump (PostgreSQL) 99.1')"], *args, **kwargs)

    monkeypatch.setattr(postgresql, "_TOOL_MAJOR", {})
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(postgresql.subprocess, "Popen", popen)
    monkeypatch.setattr(postgresql, "_query_sizes",
                        lambda u: (170004, 12345))
    u = common.parse(PG_URL)
    assert postgresql.check(u, "/tmp") == 12345 // postgresql.MIN_RATIO
    assert postgresql.check(u, "/tmp") == 12345 // postgresql.MIN_RATIO
    assert calls == [["/usr/bin/pg_dump", "--version"]]
    monkeypatch.setattr(postgresql, "_TOOL_MAJOR",
                        {"/usr/bin/pg_dump": 16})
    with pytest.raises(exceptions.BackupError) as err:
        postgresql.check(u, "/tmp")
    assert err.value.reason == "tool-version"
    assert "pg_dump 16 cannot dump a PostgreSQL 17 server" in str(err.value)


def _refused(kind: str) -> str:
    """The driver's own message for a refused connection (port 1)."""
    if kind == "postgresql":
        import psycopg2 as driver

        args = {"host": "127.0.0.1", "port": 1, "user": "u",
                "password": "secretpw", "dbname": "db"}
    else:
        import pymysql as driver

        args = {"host": "127.0.0.1", "port": 1, "user": "u",
                "password": "secretpw", "database": "db",
                "charset": "utf8mb4"}
    try:
        driver.connect(**args).close()
    except driver.Error as exc:
        return str(exc)
    raise AssertionError("something answers on port 1")


@pytest.mark.parametrize("kind, url", (
    ("postgresql", "postgresql://u:secretpw@127.0.0.1:1/db"),
    ("mysql", "mysql+pymysql://u:secretpw@127.0.0.1:1/db"),
    # unusual URLs: connected to through SQLAlchemy
    ("postgresql", "postgresql://u:secretpw@127.0.0.1:1/db?sslmode=allow"),
    ("mysql", "mysql+pymysql://u:secretpw@127.0.0.1:1/db?connect_timeout=5"),
))
def test_unreachable_server_is_reported_with_the_driver_message(
        kind, url, tmp_path, monkeypatch):
    """A server that refuses the size query's connection gives the same
    error as before (message, reason, exit code), with the driver's
    own words and no password, whichever way the URL is read."""
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(postgresql, "_TOOL_MAJOR", {"/usr/bin/pg_dump": 0})
    with pytest.raises(exceptions.BackupError) as err:
        backup.check_can_backup(url, str(tmp_path / "b"))
    driver = _refused(kind)
    if kind == "postgresql":
        driver = driver.strip()
    assert str(err.value) == (
        "cannot measure the database db before its backup: %s" % driver)
    assert err.value.reason == "unreachable" and err.value.exit_code == 8
    assert err.value.database == "db"
    assert "secretpw" not in str(err.value)


# -- bounded lock waits of a restore ------------------------------------------

def test_restore_waits_the_run_locks_default():
    """restore's lock_wait defaults to the run lock's default timeout
    (300 s), without importing the configuration module."""
    import inspect

    from mistral_db_flows import conf

    assert common.DEFAULT_LOCK_WAIT == conf.DEFAULT_LOCK_TIMEOUT == 300
    for function in (backup.restore, postgresql.restore, mysql.restore):
        default = inspect.signature(function).parameters["lock_wait"]
        assert default.default == 300
        assert default.kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("seconds, unit, most, expected", (
    (2, 0.001, 2 ** 31 - 1, 2000),
    (1.1, 0.001, 2 ** 31 - 1, 1100),
    (0.0004, 0.001, 2 ** 31 - 1, 1),
    (0, 0.001, 2 ** 31 - 1, 1),       # lock_timeout = 0 would wait forever
    (-5, 1, 31536000, 1),
    (2.5, 1, 31536000, 3),
    (300, 1, 31536000, 300),
    (float("inf"), 1, 31536000, 31536000),
    (1e12, 0.001, 2 ** 31 - 1, 2 ** 31 - 1),
))
def test_lock_wait_limit(seconds, unit, most, expected):
    """Seconds become the server's whole units, never 0 (which means
    "no limit" to PostgreSQL) nor more than the server takes."""
    assert common.lock_wait_limit(seconds, unit=unit, most=most) == expected


def test_lock_wait_limit_refuses_nan():
    with pytest.raises(ValueError):
        common.lock_wait_limit(float("nan"), unit=1, most=10)


def test_lock_timeout_message_says_what_to_do():
    """One line: database, backup, what is locked, how long we waited,
    what state the database is in and what to do."""
    err = common.lock_timeout_error(
        "mistral", "/b/m.pgdump", 300.0, table="workflow_executions_v2",
        changed=False, outcome="the database is unchanged")
    assert str(err) == (
        "restoring mistral from /b/m.pgdump gave up after waiting 300s "
        "for a lock another session holds on table workflow_executions_v2;"
        " the database is unchanged. Stop the Mistral services using the "
        "database, then run the same command again to finish the restore")
    assert (err.reason, err.database, err.path, err.changed, err.table,
            err.lock_wait, err.exit_code) == (
        "lock-timeout", "mistral", "/b/m.pgdump", False,
        "workflow_executions_v2", 300.0, 9)
    unnamed = common.lock_timeout_error(
        "mistral", "/b/m.sql", 2.5, table=None, changed=True,
        outcome="the database is part-restored")
    assert "waiting 2.5s for a lock another session holds on one of its " \
        "tables; the database is part-restored. Stop" in str(unnamed)
    assert unnamed.table is None and unnamed.changed is True


_PG_SCRIPT = (
    b"--\n-- PostgreSQL database dump\n--\n\n"
    b"\\restrict 710uTalbcXdjSIWTMTu5EGAxjTaltJAVRWzXhV\n\n"
    b"-- Dumped from database version 15.20\n\n"
    b"SET statement_timeout = 0;\nSET lock_timeout = 0;\n"
    b"SET idle_in_transaction_session_timeout = 0;\n"
    b"SET client_encoding = 'UTF8';\n"
    b"SELECT pg_catalog.set_config('search_path', '', false);\n"
    b"SET row_security = off;\n\n")
_PG_BODY = (b"ALTER TABLE IF EXISTS ONLY public.b DROP CONSTRAINT IF EXISTS "
            b"b_id_fkey;\nDROP TABLE IF EXISTS public.b;\n--\n"
            b"-- Name: b; Type: TABLE\n--\n\nCREATE TABLE public.b (\n"
            b"    id integer\n);\n")


def _reader(data: bytes, size: int):
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    return lambda: chunks.pop(0) if chunks else b""


@pytest.mark.parametrize("size", (1, 7, 4096))
def test_pg_restore_script_header_is_found(size):
    """The header of pg_restore's script (comments, \\restrict, one-line
    SETs) ends before its first statement, however the pipe cuts it."""
    header, rest = postgresql.split_header(_reader(_PG_SCRIPT + _PG_BODY,
                                                   size))
    assert header == _PG_SCRIPT
    assert rest.startswith(b"ALTER TABLE") and _PG_BODY.startswith(rest)


def test_pg_restore_script_header_edge_cases(monkeypatch):
    """No header, nothing at all, only a header, an unfinished last
    line, and a header longer than the limit."""
    header, rest = postgresql.split_header(_reader(_PG_BODY, 5))
    assert header == b"" and rest.startswith(b"ALTER TABLE IF EXISTS ONLY "
                                             b"public.b DROP CONSTRAINT IF "
                                             b"EXISTS b_id_fkey;\n")
    assert _PG_BODY.startswith(rest)
    assert postgresql.split_header(_reader(b"", 5)) == (b"", b"")
    assert postgresql.split_header(_reader(_PG_SCRIPT, 5)) == \
        (_PG_SCRIPT, b"")
    assert postgresql.split_header(_reader(b"SET a = 1;\nSET b", 5)) == \
        (b"SET a = 1;\n", b"SET b")
    monkeypatch.setattr(postgresql, "_HEADER_MAX", 20)
    header, rest = postgresql.split_header(_reader(b"-- x\n" * 10, 3))
    read = header + rest
    assert (b"-- x\n" * 10).startswith(read) and 20 <= len(read) < 23
    assert header.endswith(b"\n") and b"\n" not in rest


def test_pg_restore_sets_lock_timeout_before_the_drops_and_after_the_header(
        monkeypatch):
    """The script psql gets: BEGIN, our lock_timeout, the drops; then
    pg_restore's header (lock_timeout = 0), our lock_timeout again, the
    rest; COMMIT once pg_restore succeeded."""
    sent = []

    class Proc:
        def __init__(self, data: bytes) -> None:
            r, w = os.pipe()
            os.write(w, data)
            os.close(w)
            self.stdout = os.fdopen(r, "rb")
            self.stdin = None

        def wait(self) -> int:
            return 0

    class Sink:
        def __init__(self) -> None:
            self.r, w = os.pipe()
            self.stdin = os.fdopen(w, "wb")

        def wait(self) -> int:
            return 0

    reader, writer = Proc(_PG_SCRIPT + _PG_BODY), Sink()
    import threading

    collector = threading.Thread(
        target=lambda: sent.append(os.fdopen(writer.r, "rb").read()))
    collector.start()
    postgresql._feed(reader, writer, 2500)
    collector.join()
    script = sent[0]
    assert script.startswith(b"BEGIN;\nSET lock_timeout = 2500;\n")
    assert script.index(b"LOCK TABLE") < script.index(b"DROP %s IF EXISTS")
    assert (_PG_SCRIPT + b"SET lock_timeout = 2500;\n" + _PG_BODY
            + b"COMMIT;\n") in script


@pytest.mark.parametrize("stderr, expected", (
    ("psql:<stdin>:90: ERROR:  mdf-lock-timeout: LOCK TABLE "
     "public.workflow_executions_v2 IN ACCESS EXCLUSIVE MODE\n"
     "CONTEXT:  PL/pgSQL function inline_code_block line 62 at RAISE",
     ("table", "workflow_executions_v2")),
    ('psql:<stdin>:90: ERROR:  mdf-lock-timeout: LOCK TABLE '
     'public."Odd Name" IN ACCESS EXCLUSIVE MODE',
     ("table", '"Odd Name"')),
    ("ERROR:  mdf-lock-timeout: DROP VIEW IF EXISTS public.running CASCADE",
     ("view", "running")),
    ("ERROR:  mdf-lock-timeout: DROP MATERIALIZED VIEW IF EXISTS "
     "other.m CASCADE", ("materialized view", "other.m")),
    ("psql:<stdin>:120: ERROR:  canceling statement due to lock timeout",
     ("table", None)),
    ("psql:<stdin>:7: ERROR:  relation \"x\" does not exist", None),
    ("", None),
))
def test_pg_lock_timeout_is_recognised(stderr, expected):
    """Our drops' marked error names what waited; the server's own
    message (pg_restore's script) only says a lock timed out."""
    assert postgresql.lock_timeout(stderr) == expected
    assert postgresql.LOCK_TIMEOUT_MARK in postgresql.DROP_PUBLIC


def _fake_client(tmp_path, name: str, stderr: str) -> str:
    """A client that reads its input, notes its argv, fails with
    ``stderr``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(
        "#!%s\nimport json, sys\nsys.stdin.buffer.read()\n"
        "open(%r, 'w').write(json.dumps(sys.argv[1:]))\n"
        "sys.stderr.write(%r)\nsys.exit(1)\n"
        % (sys.executable, str(tmp_path / "argv.json"), stderr))
    tool.chmod(0o755)
    return str(bin_dir)


@pytest.mark.parametrize("stderr, reason", (
    ("ERROR 1205 (HY000) at line 42: Lock wait timeout exceeded; try "
     "restarting transaction\n", "lock-timeout"),
    ("ERROR 1064 (42000) at line 3: You have an error\n", "tool-failed"),
))
def test_mysql_load_waits_bounded(tmp_path, monkeypatch, stderr, reason):
    """The client loading the dump bounds its lock waits
    (--init-command); a lock wait that times out there says so (the
    database is part-restored), other errors keep their message."""
    import json

    calls = []
    monkeypatch.setattr(mysql, "_drop_everything",
                        lambda *args: calls.append(args))
    monkeypatch.setenv("PATH", _fake_client(tmp_path, "mariadb", stderr))
    dump = tmp_path / "m.sql"
    dump.write_bytes(b"SELECT 1;\n-- Dump completed\n")
    u = common.parse("mysql+pymysql://u:secretpw@h/mistral")
    fd = os.open(dump, os.O_RDONLY)
    try:
        with pytest.raises(exceptions.RestoreError) as err:
            mysql.restore(u, str(dump), fd, lock_wait=2.5)
    finally:
        os.close(fd)
    assert calls == [(u, str(dump), 2.5)]
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert ("--init-command=SET @@SESSION.lock_wait_timeout = 3, "
            "@@SESSION.innodb_lock_wait_timeout = 3") in argv
    assert argv[0].startswith("--defaults-extra-file=")
    assert "secretpw" not in " ".join(argv) + str(err.value)
    assert err.value.reason == reason and err.value.changed is True
    if reason == "lock-timeout":
        assert str(err.value).startswith(
            "restoring mistral from %s gave up after waiting 3s for a lock "
            "another session holds on one of its tables; the database is "
            "part-restored" % dump)
        assert err.value.lock_wait == 3 and err.value.table is None
    else:
        assert str(err.value).startswith(
            "loading %s into mistral (the database is part-restored; run "
            "the restore again) failed: mariadb exited with 1: ERROR 1064"
            % dump)


def test_sqlite_restore_takes_lock_wait(tmp_path):
    """lock_wait is accepted for every backend (SQLite restores as
    before)."""
    import sqlite3

    db = tmp_path / "m.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    url = "sqlite:///%s" % db
    taken = backup.take(url, str(tmp_path / "b"), label="x")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    backup.restore(url, taken, lock_wait=1)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    conn.close()
