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
import sqlalchemy as sa

from mistral_db_flows import backup
from mistral_db_flows import backup_errors
from mistral_db_flows import locking
from mistral_db_flows.backup import common
from mistral_db_flows.backup import mysql
from mistral_db_flows.backup import postgresql

PASSWORD = 'p#ss "w0rd"\\ \'x\' \tend'
PG_URL = "postgresql+psycopg2://mistral:pw@db.example:6543/mistral"
WHEN = datetime.datetime(2025, 1, 2, 3, 4, 5, 678901,
                         tzinfo=datetime.timezone.utc)


def _url(text: str):
    return sa.engine.make_url(text)


def test_file_name_has_database_key_time_and_label_only():
    """The name is <db>-<identity hash>-<UTC time>-<label>.<ext>; the
    user and password never appear, odd characters are replaced."""
    name = common.file_name(_url(PG_URL), "upgrade to 045/x", WHEN)
    assert name.startswith("mistral-")
    assert name.endswith("-20250102T030405678901Z-upgrade_to_045_x.pgdump")
    assert common.NAME_RE.match(name)
    assert "pw" not in name and "@" not in name


def test_identity_ignores_credentials_but_not_place():
    """Two users of one database share a key; two servers do not."""
    a = common.identity(_url("postgresql://a:1@h:5432/mistral"))
    b = common.identity(_url("postgresql://b:2@h:5432/mistral"))
    c = common.identity(_url("postgresql://a:1@other:5432/mistral"))
    assert a == b != c
    assert "1" not in a.replace("5432", "")
    assert common.identity(_url("mariadb+pymysql://u@h/m")) == \
        common.identity(_url("mysql+pymysql://u@h/m"))


def test_in_memory_sqlite_cannot_be_backed_up():
    """An in-memory database has no file to back up: a clear error."""
    with pytest.raises(backup_errors.BackupError) as err:
        backup.take("sqlite://", "/tmp", label="x")
    assert err.value.reason == "unsupported"


def test_postgresql_password_only_in_the_environment():
    """pg_dump gets the password (and user) through libpq variables,
    never on its command line."""
    u = _url(PG_URL).set(password=PASSWORD,
                         query={"sslmode": "require"})
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
    u = _url(PG_URL).set(password=PASSWORD)
    postgresql.dump(u, 1, "/dev/null")
    flat = " ".join(seen["argvs"])
    assert PASSWORD not in flat and "mistral" not in flat
    assert seen["env"]["PGPASSWORD"] == PASSWORD


@pytest.mark.skipif(not shutil.which("mariadb") and not shutil.which("mysql"),
                    reason="needs the MariaDB/MySQL client")
def test_mysql_option_file_survives_odd_passwords(tmp_path):
    """The client reads back exactly the password we wrote, whatever
    quotes, backslashes, '#' or tabs it holds; the file is 0600."""
    u = _url("mysql+pymysql://mistral@db.example:3307/mistral").set(
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
    """A tool that echoes the password on stderr has it masked."""
    with pytest.raises(backup_errors.BackupError) as err:
        common.run([sys.executable, "-c",
                    "import sys; sys.stderr.write('bad %s' % sys.argv[1]);"
                    " sys.exit(3)", "hunter2"],
                   env=dict(os.environ), error=backup_errors.BackupError, database="db",
                   what="the tool", secret="hunter2")
    assert "hunter2" not in str(err.value)
    assert "exited with 3" in str(err.value) and "bad ***" in str(err.value)
    assert err.value.reason == "tool-failed"


def test_missing_tool_is_named_before_connecting(monkeypatch, tmp_path):
    """With no client tools on PATH the check fails on the tools first
    (the database URL here is not even reachable)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    for url, tool in (("postgresql://u:pw@127.0.0.1:1/db", "pg_dump"),
                      ("mysql+pymysql://u:pw@127.0.0.1:1/db",
                       "mariadb-dump")):
        with pytest.raises(backup_errors.BackupError) as err:
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
    with pytest.raises(backup_errors.BackupError) as err:
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
    """Locks are named after the database; users and hosts do not
    matter, so two URLs of one database exclude each other."""
    a = locking.lock_for("postgresql://u:secret@h1/mistral", "x")
    b = locking.lock_for("postgresql://v:other@h2/mistral", "x")
    assert a.name == b.name and a.key == b.key
    assert "secret" not in a.name
    long_name = "m" * 80
    m = locking.lock_for("mysql+pymysql://u:secret@h/%s" % long_name, "x")
    assert len(m.name) <= 64 and "secret" not in m.name


def test_lock_timeout_message_names_the_holder():
    """The message says which database, who holds it and how long we
    waited; the error carries the same facts."""
    err = locking.LockTimeout(database="mistral", lock="l", timeout=30,
                              owner="upgrade head",
                              holder={"connection_id": 42, "user": "m"})
    assert err.exit_code == 11 and err.holder["connection_id"] == 42
    text = str(err)
    assert "mistral" in text and "connection id 42" in text
    assert "30s" in text
