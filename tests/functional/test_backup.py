"""Backups restore schema and every row exactly, on real databases.

Each test builds a small Mistral-like schema (foreign keys, unique
constraints, indexes, long text, booleans, an auto-increment counter, a
view, ``alembic_version``), seeds rows, backs it up, changes things,
restores, and compares the schema and a checksum of every row (plus
sequences, views and routines) with the state before.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import stat

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_types

from mistral_db_flows import backup
from mistral_db_flows import exceptions
from mistral_db_flows import schema_dump
from mistral_db_flows import urls
from mistral_db_flows.backup import common

SECRET = "s3cr3t-Pa55"


def _schema(md: sa.MetaData) -> None:
    long_text = sa.Text().with_variant(mysql_types.LONGTEXT(), "mysql")
    opts = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}
    sa.Table(
        "workflow_definitions_v2", md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("project_id", sa.String(80)),
        sa.Column("definition", long_text),
        sa.Column("is_system", sa.Boolean),
        sa.Column("created_at", sa.DateTime),
        sa.UniqueConstraint("name", "project_id",
                            name="workflow_definitions_v2_name_project"),
        **opts)
    sa.Table(
        "workflow_executions_v2", md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workflow_id", sa.String(36),
                  sa.ForeignKey("workflow_definitions_v2.id")),
        sa.Column("state", sa.String(20)),
        sa.Column("params", sa.Text),
        sa.Column("output", long_text),
        sa.Column("created_at", sa.DateTime),
        sa.Index("workflow_executions_v2_state", "state"),
        **opts)
    sa.Table(
        "task_executions_v2", md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workflow_execution_id", sa.String(36),
                  sa.ForeignKey("workflow_executions_v2.id",
                                ondelete="CASCADE")),
        sa.Column("name", sa.String(255)),
        sa.Column("state", sa.String(20)),
        sa.Column("published", sa.Text),
        sa.Column("processed", sa.Boolean),
        sa.Index("task_executions_v2_wf_ex_id", "workflow_execution_id"),
        **opts)
    sa.Table(
        "named_locks", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(190), unique=True),
        **opts)
    sa.Table("alembic_version", md,
             sa.Column("version_num", sa.String(32), primary_key=True),
             **opts)


_WHEN = datetime.datetime(2024, 2, 29, 23, 0, 59, 123456)
_ODD = "ünïcødé ☃ 𝄞 'quote' \"dq\" back\\slash\ttab\nline"


def seed(url: str) -> None:
    """A schema and rows of every kind of value we store."""
    md = sa.MetaData()
    _schema(md)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    t = md.tables
    try:
        with engine.begin() as conn:
            md.create_all(conn)
            conn.execute(t["alembic_version"].insert(),
                         [{"version_num": "045"}])
            conn.execute(t["workflow_definitions_v2"].insert(), [
                {"id": "wf-%03d" % i, "name": "wf %d %s" % (i, _ODD),
                 "project_id": None if i % 3 else "p%d" % i,
                 "definition": ("x" * 200_000) if i == 7 else _ODD * i,
                 "is_system": bool(i % 2),
                 "created_at": _WHEN.replace(minute=i) if i % 5 else None}
                for i in range(30)])
            conn.execute(t["workflow_executions_v2"].insert(), [
                {"id": "ex-%04d" % i, "workflow_id": "wf-%03d" % (i % 30),
                 "state": ("RUNNING", "SUCCESS", "ERROR")[i % 3],
                 "params": '{"i": %d}' % i, "output": _ODD * (i % 4),
                 "created_at": None}
                for i in range(100)])
            conn.execute(t["task_executions_v2"].insert(), [
                {"id": "tk-%05d" % i,
                 "workflow_execution_id": "ex-%04d" % (i % 100),
                 "name": "task %d" % i, "state": "SUCCESS",
                 "published": None if i % 7 else _ODD,
                 "processed": i % 2 == 0}
                for i in range(600)])
            conn.execute(t["named_locks"].insert(),
                         [{"name": "lock %d" % i} for i in range(20)])
            conn.execute(sa.text(
                "CREATE VIEW running_executions AS SELECT id, state FROM "
                "workflow_executions_v2 WHERE state = 'RUNNING'"))
    finally:
        engine.dispose()


_CHANGES = (
    "DELETE FROM task_executions_v2 WHERE name LIKE 'task 1%'",
    "UPDATE workflow_executions_v2 SET state = 'PAUSED' "
    "WHERE state = 'ERROR'",
    "INSERT INTO named_locks (name) VALUES ('new lock')",
    "UPDATE alembic_version SET version_num = '046'",
    "ALTER TABLE task_executions_v2 ADD COLUMN extra VARCHAR(20)",
    "CREATE TABLE half_done_v2 (id INTEGER PRIMARY KEY, note VARCHAR(40))",
    "CREATE INDEX half_done_v2_note ON half_done_v2 (note)",
    "INSERT INTO half_done_v2 VALUES (1, 'x')",
    "CREATE VIEW later_view AS SELECT id FROM half_done_v2",
    "DROP VIEW running_executions",
)


def change(url: str) -> None:
    """What a failed upgrade might leave: rows, columns, tables, views,
    indexes and the version all different."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in _CHANGES:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def _rows_digest(conn: sa.Connection, table: str) -> tuple[int, str]:
    insp = sa.inspect(conn)
    order = insp.get_pk_constraint(table)["constrained_columns"] or [
        c["name"] for c in insp.get_columns(table)]
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c)
                       for c in order)
    rows = conn.execute(sa.text("SELECT * FROM %s ORDER BY %s" % (
        conn.dialect.identifier_preparer.quote(table), quoted))).all()
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(tuple(row)).encode())
    return len(rows), digest.hexdigest()


_EXTRAS = {
    "postgresql": {
        "sequences": "SELECT sequencename, last_value FROM pg_sequences "
                     "WHERE schemaname = 'public' ORDER BY 1",
        "views": "SELECT viewname, definition FROM pg_views "
                 "WHERE schemaname = 'public' ORDER BY 1",
        "routines": "SELECT proname FROM pg_proc WHERE pronamespace = "
                    "'public'::regnamespace ORDER BY 1",
        "types": "SELECT typname FROM pg_type WHERE typnamespace = "
                 "'public'::regnamespace ORDER BY 1",
    },
    "mysql": {
        "counters": "SELECT table_name, auto_increment FROM "
                    "information_schema.tables WHERE table_schema = "
                    "DATABASE() ORDER BY 1",
        "views": "SELECT table_name, view_definition FROM "
                 "information_schema.views WHERE table_schema = "
                 "DATABASE() ORDER BY 1",
        "routines": "SELECT routine_name FROM information_schema.routines "
                    "WHERE routine_schema = DATABASE() ORDER BY 1",
    },
    "sqlite": {
        "objects": "SELECT type, name, sql FROM sqlite_master ORDER BY 2",
    },
}


def state(url: str) -> dict:
    """Schema, a digest of every row of every table, and the objects
    beyond tables (sequences and their values, views, routines)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = sorted(sa.inspect(conn).get_table_names())
            result = {
                "schema": schema_dump.dump_connection(conn),
                "rows": {t: _rows_digest(conn, t) for t in tables},
            }
            extras = _EXTRAS[common.backend(urls.parse(url))]
            for key, query in extras.items():
                result[key] = [tuple(r) for r in
                               conn.execute(sa.text(query)).all()]
    finally:
        engine.dispose()
    return result


def _backend_of(url: str) -> str:
    return common.backend(urls.parse(url))


def test_restore_brings_back_schema_and_every_row(db_url, tmp_path):
    """After take, change, restore: schema, rows, version, views and
    counters are exactly as before, and a second restore (a resumed
    revert) changes nothing."""
    seed(db_url)
    before = state(db_url)
    calls = []
    taken = backup.take(db_url, str(tmp_path / "backups"), label="upgrade",
                         progress=lambda done, total: calls.append(done))
    assert calls and calls[-1] == taken["size"] > 0
    change(db_url)
    assert state(db_url) != before
    backup.restore(db_url, taken)
    after = state(db_url)
    assert after["schema"] == before["schema"]
    assert after["rows"] == before["rows"]
    assert after == before
    backup.restore(db_url, taken)
    assert state(db_url) == before


def test_backup_description_is_json_and_names_no_credentials(db_url,
                                                            tmp_path):
    """The description holds backend, path, time, size and database; the
    file is 0600 in a 0700 directory and its name holds neither user
    nor password."""
    import json

    seed(db_url)
    url = db_url
    if _backend_of(db_url) == "postgresql":
        # The test server trusts local connections: the password is
        # sent but not needed, so it must simply never show up.
        url = sa.engine.make_url(db_url).set(
            password=SECRET).render_as_string(hide_password=False)
    directory = tmp_path / "new" / "backups"
    taken = backup.take(url, str(directory), label="upgrade to 045")
    assert json.loads(json.dumps(taken)) == taken
    assert set(taken) >= {"backend", "path", "created", "size", "database",
                          "seconds"}
    assert 0 <= taken["seconds"] < 600
    assert taken["backend"] == _backend_of(db_url)
    assert os.path.dirname(taken["path"]) == str(directory)
    assert stat.S_IMODE(os.stat(taken["path"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert taken["size"] == os.path.getsize(taken["path"])
    name = os.path.basename(taken["path"])
    assert common.NAME_RE.match(name)
    user = sa.engine.make_url(db_url).username
    for secret in filter(None, (SECRET, user, "@")):
        assert secret not in name
    assert SECRET not in json.dumps(taken)
    assert sorted(os.listdir(directory)) == [name, name + ".sha256"]
    # sha256sum's format, so `sha256sum -c` checks it by hand.
    with open(taken["path"] + ".sha256") as f:
        assert f.read() == "%s  %s\n" % (taken["sha256"], name)
    assert taken["sha256"] == hashlib.sha256(
        open(taken["path"], "rb").read()).hexdigest()


@pytest.mark.postgresql
@pytest.mark.mysql
def test_missing_tools_fail_before_any_change(make_db, tmp_path,
                                              monkeypatch):
    """Without the dump/restore tools on PATH the check, the backup and
    the restore all fail with the tool's name, and nothing is dropped."""
    for kind, tool in (("postgresql", "pg_dump"), ("mysql", "mariadb-dump")):
        url = make_db(kind)
        seed(url)
        directory = tmp_path / kind
        taken = backup.take(url, str(directory), label="upgrade")
        change(url)
        changed = state(url)
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        with pytest.raises(exceptions.BackupError) as err:
            backup.check_can_backup(url, str(directory))
        assert err.value.reason == "tool-missing"
        assert err.value.tool == tool and tool in str(err.value)
        assert err.value.exit_code == 8
        with pytest.raises(exceptions.BackupError):
            backup.take(url, str(directory), label="upgrade")
        assert sorted(os.listdir(directory)) == [
            os.path.basename(taken["path"]),
            os.path.basename(taken["path"]) + ".sha256"]
        with pytest.raises(exceptions.RestoreError) as err:
            backup.restore(url, taken)
        assert err.value.reason == "tool-missing"
        assert err.value.changed is False and err.value.exit_code == 9
        monkeypatch.undo()
        assert state(url) == changed


def test_unwritable_directory_is_refused(db_url, tmp_path):
    """A backup directory that cannot be created is a clear error."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(exceptions.BackupError) as err:
        backup.check_can_backup(db_url, str(blocker / "backups"))
    assert err.value.reason == "no-permission"
    assert str(blocker) in str(err.value)


def test_not_enough_space_is_refused(db_url, tmp_path, monkeypatch):
    """When the estimated backup size exceeds the free space, the check
    says how much is needed and how much is free."""
    seed(db_url)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda path: usage._replace(free=10))
    with pytest.raises(exceptions.BackupError) as err:
        backup.check_can_backup(db_url, str(tmp_path / "backups"))
    assert err.value.reason == "no-space"
    assert err.value.free == 10 and err.value.needed > 10
    monkeypatch.undo()
    backup.check_can_backup(db_url, str(tmp_path / "backups"))


def test_restore_refuses_a_foreign_or_damaged_backup(db_url, make_db,
                                                     tmp_path):
    """A backup of another database, or one whose file changed size, is
    refused before the database is touched."""
    seed(db_url)
    other = make_db(_backend_of(db_url))
    seed(other)
    taken = backup.take(other, str(tmp_path / "b"), label="upgrade")
    change(db_url)
    changed = state(db_url)
    with pytest.raises(exceptions.RestoreError) as err:
        backup.restore(db_url, taken)
    assert err.value.reason == "mismatch" and err.value.changed is False
    mine = backup.take(db_url, str(tmp_path / "b"), label="upgrade")
    with open(mine["path"], "r+b") as damaged:
        damaged.truncate(mine["size"] // 2)
    with pytest.raises(exceptions.RestoreError) as err:
        backup.restore(db_url, mine)
    assert err.value.reason == "unusable-backup"
    assert state(db_url) == changed


def test_same_size_corruption_is_refused_before_anything_is_dropped(
        db_url, tmp_path):
    """A byte changed inside the dump (same size, so the size check
    passes) is refused by its sha256 before anything is dropped: exit 9,
    the file named, what to do said, the database as it was. The file
    beside the backup alone is enough (a record without the digest)."""
    seed(db_url)
    taken = backup.take(db_url, str(tmp_path / "b"), label="upgrade")
    change(db_url)
    changed = state(db_url)
    with open(taken["path"], "r+b") as damaged:
        damaged.seek(taken["size"] // 2)
        byte = damaged.read(1)
        damaged.seek(taken["size"] // 2)
        damaged.write(bytes([byte[0] ^ 0x01]))
    assert os.path.getsize(taken["path"]) == taken["size"]
    for record in (taken, {k: v for k, v in taken.items()
                           if k != "sha256"}):
        with pytest.raises(exceptions.RestoreError) as err:
            backup.restore(db_url, record)
        assert err.value.reason == "checksum-mismatch"
        assert err.value.changed is False and err.value.exit_code == 9
        assert err.value.path == taken["path"]
        message = str(err.value)
        assert taken["path"] in message and "sha256" in message
        assert "left as it is" in message and "docs/safety.md" in message
        assert state(db_url) == changed


@pytest.mark.mysql
def test_mysql_dump_cut_short_is_refused(make_db, tmp_path):
    """A MariaDB dump without its end marker (the dump died) is refused
    even when the recorded size was updated to match and no checksum
    was recorded."""
    url = make_db("mysql")
    seed(url)
    taken = backup.take(url, str(tmp_path), label="upgrade")
    with open(taken["path"], "r+b") as damaged:
        damaged.truncate(taken["size"] - 100)
    taken["size"] -= 100
    # Its checksums gone too (the record of a build before them): the
    # missing end marker alone refuses it.
    del taken["sha256"]
    os.unlink(taken["path"] + ".sha256")
    with pytest.raises(exceptions.RestoreError) as err:
        backup.restore(url, taken)
    assert err.value.reason == "unusable-backup"
    assert "workflow_definitions_v2" in sa.inspect(
        sa.create_engine(url)).get_table_names()


@pytest.mark.postgresql
def test_postgresql_failed_restore_rolls_back(make_db, tmp_path):
    """A PostgreSQL restore that fails half-way (archive cut short after
    its table of contents) leaves the database exactly as it was."""
    url = make_db("postgresql")
    seed(url)
    taken = backup.take(url, str(tmp_path), label="upgrade")
    change(url)
    changed = state(url)
    with open(taken["path"], "r+b") as damaged:
        damaged.truncate(taken["size"] * 2 // 3)
    taken["size"] = taken["size"] * 2 // 3
    # Past the checksums (as for a backup recorded before them), so that
    # the restore itself fails half-way.
    del taken["sha256"]
    os.unlink(taken["path"] + ".sha256")
    with pytest.raises(exceptions.RestoreError) as err:
        backup.restore(url, taken)
    assert err.value.reason == "tool-failed"
    assert err.value.changed is False
    assert state(url) == changed


@pytest.mark.postgresql
def test_postgresql_objects_of_every_kind_come_and_go(make_db, tmp_path):
    """Functions, enum types, domains, sequences and materialized views
    created after the backup are dropped; those before come back."""
    url = make_db("postgresql")
    seed(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TYPE old_state AS ENUM ('a', 'b')"))
        conn.execute(sa.text(
            "CREATE FUNCTION old_fn(x int) RETURNS int LANGUAGE sql "
            "AS 'SELECT x + 1'"))
        conn.execute(sa.text("CREATE SEQUENCE old_seq START 40"))
        conn.execute(sa.text("SELECT nextval('old_seq')"))
    before = state(url)
    taken = backup.take(url, str(tmp_path), label="upgrade")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP FUNCTION old_fn(int)"))
        conn.execute(sa.text("SELECT nextval('old_seq')"))
        conn.execute(sa.text("CREATE TYPE new_state AS ENUM ('c')"))
        conn.execute(sa.text("CREATE DOMAIN new_dom AS int CHECK "
                             "(VALUE > 0)"))
        conn.execute(sa.text("CREATE TABLE uses_type (s old_state, "
                             "d new_dom, n serial)"))
        conn.execute(sa.text(
            "CREATE FUNCTION new_fn() RETURNS SETOF uses_type "
            "LANGUAGE sql AS 'SELECT * FROM uses_type'"))
        conn.execute(sa.text(
            "CREATE MATERIALIZED VIEW new_mv AS SELECT * FROM named_locks"))
    engine.dispose()
    change(url)
    backup.restore(url, taken)
    assert state(url) == before


def test_sqlite_restore_is_page_identical(make_db, tmp_path):
    """A restored SQLite file equals the original page for page; only the
    header's change counters differ, which SQLite bumps on purpose so
    open connections notice."""
    url = make_db("sqlite")
    seed(url)
    path = sa.engine.make_url(url).database
    with open(path, "rb") as original:
        before = original.read()
    taken = backup.take(url, str(tmp_path / "b"), label="upgrade")
    change(url)
    backup.restore(url, taken)
    with open(path, "rb") as restored:
        after = restored.read()
    assert len(after) == len(before)
    counters = set(range(24, 28)) | set(range(40, 44)) | set(range(92, 96))
    differing = {i for i in range(len(before)) if before[i] != after[i]}
    assert differing <= counters


def test_prune_keeps_the_newest_of_each_database(make_db, tmp_path):
    """Retention keeps the newest N backups per database and kind (a
    populate never pushes out a pre-upgrade backup), deletes a backup's
    checksum with it, never touches other files or protected backups,
    and removes partial files whose writer is dead."""
    first, second = make_db("sqlite"), make_db("sqlite")
    seed(first)
    seed(second)
    directory = str(tmp_path / "backups")
    ours = [backup.take(first, directory, label="upgrade")["path"]
            for _ in range(4)]
    # Taken after ours: without kinds they would push ours out.
    populates = [backup.take(first, directory, label="populate")["path"]
                 for _ in range(2)]
    theirs = [backup.take(second, directory, label="stamp")["path"]
              for _ in range(3)]
    foreign = os.path.join(directory, "operator-notes.txt")
    with open(foreign, "w") as notes:
        notes.write("keep me")
    dead = "%s.%d.partial" % (ours[0].replace(".sqlite", "x.sqlite"),
                              2 ** 22 + 12345)
    alive = "%s.%d.partial" % (ours[0].replace(".sqlite", "y.sqlite"),
                               os.getpid())
    for partial in (dead, alive):
        open(partial, "w").close()
    removed = backup.prune(directory, 2, protect=[ours[0]])
    assert sorted(removed) == sorted([ours[1], theirs[0], dead])
    kept = [ours[0], ours[2], ours[3], theirs[1], theirs[2]] + populates
    assert sorted(os.listdir(directory)) == sorted(
        [os.path.basename(p) for p in kept]
        + [os.path.basename(p) + ".sha256" for p in kept]
        + [os.path.basename(p) for p in (foreign, alive)])
    with pytest.raises(ValueError):
        backup.prune(directory, 0)


# A restore in a child process that SIGKILLs itself at the first
# progress report (every 50 ms) once the backup is being read.
_KILLED_RESTORE = """
import json, os, signal, sys
from mistral_db_flows import backup
from mistral_db_flows.backup import common
common.watch.__wrapped__.__defaults__ = (0.05,)

def progress(done, total):
    # SQLite reads the backup by name: its position stays 0.
    started = done > 0 or sys.argv[1].startswith("sqlite")
    if started and done < total:
        os.kill(os.getpid(), signal.SIGKILL)

backup.restore(sys.argv[1], json.loads(sys.argv[2]), progress=progress)
"""

_BULK = {
    "postgresql": "INSERT INTO bulk SELECT i, repeat(md5(i::text), 16) "
                  "FROM generate_series(1, 100000) AS i",
    "mysql": "INSERT INTO bulk SELECT seq, repeat(md5(seq), 16) "
             "FROM seq_1_to_100000",
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
              "FROM n WHERE i < 100000) "
              "INSERT INTO bulk SELECT i, hex(randomblob(256)) FROM n",
}


def _other_sessions(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT count(*) FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()")).scalar()
    finally:
        engine.dispose()


@pytest.mark.slow
def test_restore_killed_half_way_then_run_again(db_url, tmp_path):
    """A restore killed with SIGKILL half-way leaves SQLite and
    PostgreSQL as they were (one transaction), leaves no tool running on
    behind our back, and a second restore gives exactly the backup."""
    import json
    import signal
    import subprocess
    import sys
    import time

    kind = _backend_of(db_url)
    seed(db_url)
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE bulk (id INTEGER PRIMARY KEY, "
                             "payload TEXT)"))
        conn.execute(sa.text(_BULK[kind]))
    engine.dispose()
    before = state(db_url)
    taken = backup.take(db_url, str(tmp_path), label="upgrade")
    change(db_url)
    changed = state(db_url)
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_RESTORE, db_url, json.dumps(taken)],
        env=dict(os.environ, PYTHONPATH=root), timeout=300)
    assert child.returncode == -signal.SIGKILL, \
        "the restore finished before it could be killed"
    if kind == "mysql":
        # Part-restored; but nothing may go on loading behind our back.
        time.sleep(1)
        settled = state(db_url)
        time.sleep(2)
        assert _other_sessions(db_url) == 0, "a client outlived the kill"
        assert state(db_url) == settled, "a client outlived the kill"
    else:
        assert state(db_url) == changed
    backup.restore(db_url, taken)
    assert state(db_url) == before


def test_sqlite_wal_database_in_an_odd_path(tmp_path):
    """A WAL-mode SQLite database in a folder named with URI-special
    characters is backed up and restored; the backup directory holds the
    backup file only (no -wal/-shm left beside it)."""
    import sqlite3

    folder = tmp_path / "odd ?#% dir"
    folder.mkdir()
    path = folder / "mistral.sqlite"
    url = "sqlite:///%s" % path
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    seed(url)
    before = state(url)
    taken = backup.take(url, str(folder / "backups"), label="upgrade")
    change(url)
    backup.restore(url, taken)
    assert state(url) == before
    assert sorted(os.listdir(folder / "backups")) == [
        os.path.basename(taken["path"]),
        os.path.basename(taken["path"]) + ".sha256"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


_NO_SQLALCHEMY = """
import sys
from mistral_db_flows import backup
url, directory = sys.argv[1:]
backup.check_can_backup(url, directory)
taken = backup.take(url, directory, label="t")
backup.restore(url, taken)
print(len(backup.prune(directory, 1)), "sqlalchemy" in sys.modules)
"""


def test_plain_url_backup_and_restore_need_no_sqlalchemy(db_url, tmp_path):
    """On a head database, check, take, restore and prune never import
    SQLAlchemy for a plain URL (its import alone costs ~0.1 s a run)."""
    import subprocess
    import sys

    from mistral_db_flows import migration

    migration.upgrade(db_url, "head")
    before = state(db_url)
    directory = str(tmp_path / "backups")
    backup.take(db_url, directory, label="older")
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", _NO_SQLALCHEMY, db_url, directory],
        env=dict(os.environ, PYTHONPATH=root), capture_output=True,
        text=True, check=True).stdout
    assert out.split() == ["1", "False"]
    assert state(db_url) == before


@pytest.mark.mysql
def test_mysql_odd_objects_created_after_the_backup_go(make_db, tmp_path):
    """Tables, views and routines created after the backup, named with
    backquotes, percent signs and spaces, are dropped by the restore."""
    url = make_db("mysql")
    seed(url)
    before = state(url)
    taken = backup.take(url, str(tmp_path), label="upgrade")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement in (  # no parameters: % is sent as it is
                "CREATE TABLE `odd%s ``x``` (id INT PRIMARY KEY)",
                "CREATE TABLE `50% done` (id INT PRIMARY KEY)",
                "CREATE VIEW `view %d` AS SELECT 1 AS one",
                "CREATE PROCEDURE `proc%` () SELECT 1",
                "CREATE FUNCTION `fn %%` () RETURNS INT "
                "DETERMINISTIC RETURN 1"):
            cursor.execute(statement)
        raw.commit()
        cursor.execute("SELECT count(*) FROM information_schema.tables "
                       "WHERE table_schema = DATABASE() AND "
                       "table_name LIKE '%\\%%'")
        assert cursor.fetchone()[0] == 3
    finally:
        raw.close()
        engine.dispose()
    change(url)
    backup.restore(url, taken)
    assert state(url) == before


@pytest.mark.postgresql
@pytest.mark.mysql
def test_driver_errors_after_connecting_keep_their_messages(
        make_db, tmp_path, monkeypatch):
    """A statement the server rejects while measuring (PostgreSQL,
    MariaDB) or emptying (MariaDB) the database gives the same errors as
    ever: message, reason, ``changed`` and no password."""
    from mistral_db_flows.backup import mysql
    from mistral_db_flows.backup import postgresql

    for kind, module in (("postgresql", postgresql), ("mysql", mysql)):
        url = make_db(kind)
        seed(url)
        database = sa.engine.make_url(url).database
        monkeypatch.setattr(module, "_SIZES", "SELECT no_such_column")
        with pytest.raises(exceptions.BackupError) as err:
            backup.check_can_backup(url, str(tmp_path / kind))
        assert err.value.reason == "unreachable"
        assert str(err.value).startswith(
            "cannot measure the database %s before its backup: " % database)
        assert "no_such_column" in str(err.value)
        monkeypatch.undo()
    url = make_db("mysql")
    seed(url)
    taken = backup.take(url, str(tmp_path / "m"), label="upgrade")
    monkeypatch.setattr(mysql, "_ROUTINES", "SELECT no_such_column")
    with pytest.raises(exceptions.RestoreError) as err:
        backup.restore(url, taken)
    assert str(err.value).startswith(
        "could not empty %s before restoring it: "
        % sa.engine.make_url(url).database)
    assert "no_such_column" in str(err.value)
    assert err.value.reason == "tool-failed" and err.value.changed is True
    monkeypatch.undo()
    backup.restore(url, taken)


@pytest.mark.parametrize("kind, options", (
    pytest.param("postgresql", "?sslmode=disable&connect_timeout=10",
                 marks=pytest.mark.postgresql),
    pytest.param("mysql", "?charset=utf8mb4&connect_timeout=10",
                 marks=pytest.mark.mysql),
))
def test_unusual_urls_still_go_through_sqlalchemy(make_db, tmp_path, kind,
                                                  options):
    """A URL with options the driver cannot take as they are is
    connected to through SQLAlchemy as before (PostgreSQL's go to libpq
    as SQLAlchemy passes them): check, take and restore all work."""
    url = make_db(kind)
    seed(url)
    before = state(url)
    odd = url + options
    direct = common.parse(odd).direct()
    if kind == "mysql":
        assert direct is None
    else:
        assert direct is not None and direct[1]["sslmode"] == "disable"
    backup.check_can_backup(odd, str(tmp_path))
    taken = backup.take(odd, str(tmp_path), label="upgrade")
    change(url)
    backup.restore(odd, taken)
    assert state(url) == before


# -- a lock another session holds -------------------------------------------

class _Holder:
    """A second session in an open transaction that read ``table``
    (PostgreSQL: an AccessShareLock; MariaDB: a metadata lock), as a
    Mistral service still running would hold it."""

    def __init__(self, url: str, table: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.conn = self.engine.connect()
        self.transaction = self.conn.begin()
        self.conn.execute(sa.text("SELECT * FROM %s" % table)).all()

    def release(self) -> None:
        self.transaction.rollback()
        self.conn.close()
        self.engine.dispose()


def _restore_while_locked(url: str, table: str, lock_wait: float,
                          directory) -> tuple:
    """Back the seeded ``url`` up, change it, and restore it while
    another session holds a lock on ``table``: the restore must give up
    after about ``lock_wait`` seconds, saying what to do, with the
    database as the change left it. Returns the error, the backup and
    the state before the change."""
    import time

    before = state(url)
    taken = backup.take(url, str(directory), label="upgrade")
    change(url)
    changed = state(url)
    holder = _Holder(url, table)
    try:
        started = time.monotonic()
        with pytest.raises(exceptions.RestoreError) as err:
            backup.restore(url, taken, lock_wait=lock_wait)
        elapsed = time.monotonic() - started
        assert state(url) == changed
    finally:
        holder.release()
    assert lock_wait <= elapsed < lock_wait + 6, elapsed
    text = str(err.value)
    assert "\n" not in text
    assert sa.engine.make_url(url).database in text
    assert "waiting %gs for a lock another session holds" % lock_wait in text
    assert text.endswith("Stop the Mistral services using the database, "
                         "then run the same command again to finish the "
                         "restore")
    assert err.value.reason == "lock-timeout" and err.value.exit_code == 9
    assert err.value.changed is False and err.value.path == taken["path"]
    return err.value, taken, before


@pytest.mark.postgresql
def test_postgresql_restore_gives_up_on_a_held_lock(make_db, tmp_path):
    """A session holding a lock on a table makes the restore give up
    after lock_wait seconds, naming the table, with the database exactly
    as it was (one transaction); once the lock is gone the restore
    succeeds. The password never shows."""
    plain = make_db("postgresql")
    # The test server trusts local connections: the password is sent
    # but not needed, so it must simply never show up.
    url = sa.engine.make_url(plain).set(password=SECRET).render_as_string(
        hide_password=False)
    seed(url)
    error, taken, before = _restore_while_locked(
        url, "workflow_executions_v2", 2, tmp_path)
    assert error.table == "workflow_executions_v2" and error.lock_wait == 2
    assert "holds on table workflow_executions_v2; the database is " \
        "unchanged (the transaction was rolled back)." in str(error)
    assert SECRET not in str(error)
    backup.restore(url, taken, lock_wait=2)
    assert state(url) == before


@pytest.mark.postgresql
def test_postgresql_lock_wait_also_bounds_pg_restores_script(make_db,
                                                              tmp_path):
    """pg_restore's script sets lock_timeout = 0 in its header; ours is
    set again after it, so a lock on a table only that script drops (in
    another schema) also ends the wait, and rolls everything back."""
    url = make_db("postgresql")
    seed(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA extra"))
        conn.execute(sa.text("CREATE TABLE extra.notes (id INTEGER)"))
    engine.dispose()
    error, taken, before = _restore_while_locked(url, "extra.notes", 1.5,
                                                 tmp_path)
    assert error.table is None and "one of its tables" in str(error)
    backup.restore(url, taken)
    assert state(url) == before


@pytest.mark.mysql
def test_mysql_restore_gives_up_on_a_held_metadata_lock(make_db, tmp_path):
    """On MariaDB a session's metadata lock on a table makes the restore
    give up after lock_wait seconds before anything is dropped (the
    tables are dropped in one statement, which takes all their locks
    first); once the lock is gone the restore succeeds."""
    url = make_db("mysql")
    seed(url)
    error, taken, before = _restore_while_locked(
        url, "workflow_executions_v2", 2, tmp_path)
    assert error.table is None and error.lock_wait == 2
    assert "nothing was dropped, the database is unchanged" in str(error)
    backup.restore(url, taken, lock_wait=2)
    assert state(url) == before
    assert _other_sessions(url) == 0


@pytest.mark.mysql
def test_mysql_lock_held_while_loading_is_said_part_restored(
        make_db, tmp_path, monkeypatch):
    """A lock taken once the tables were dropped (a session using a
    table of the name the dump loads) ends the client's wait too: the
    database is part-restored and says so; the next restore finishes."""
    from mistral_db_flows.backup import mysql

    url = make_db("mysql")
    seed(url)
    before = state(url)
    taken = backup.take(url, str(tmp_path), label="upgrade")
    change(url)
    holders = []
    drop = mysql._drop_everything

    def drop_then_lock(*args):
        drop(*args)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE named_locks (id INTEGER)"))
        engine.dispose()
        holders.append(_Holder(url, "named_locks"))

    monkeypatch.setattr(mysql, "_drop_everything", drop_then_lock)
    try:
        with pytest.raises(exceptions.RestoreError) as err:
            backup.restore(url, taken, lock_wait=1)
    finally:
        for holder in holders:
            holder.release()
    monkeypatch.undo()
    assert err.value.reason == "lock-timeout" and err.value.changed is True
    assert "waiting 1s for a lock another session holds on one of its " \
        "tables; the database is part-restored (MariaDB and MySQL " \
        "cannot restore in one transaction)." in str(err.value)
    assert str(err.value).endswith("run the same command again to finish "
                                   "the restore")
    backup.restore(url, taken)
    assert state(url) == before


def test_sqlite_restore_gives_up_on_a_busy_database(tmp_path):
    """Another connection's open read transaction keeps SQLite's backup
    API retrying forever: the restore gives up after lock_wait, with the
    database untouched, and succeeds once the reader is gone."""
    import sqlite3 as sqlite
    import time

    db = tmp_path / "busy.sqlite"
    url = "sqlite:///%s" % db
    with sqlite.connect(db) as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    taken = backup.take(url, str(tmp_path / "backups"), label="test")
    with sqlite.connect(db) as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    reader = sqlite.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()
    started = time.monotonic()
    try:
        with pytest.raises(exceptions.RestoreError) as info:
            backup.restore(url, taken, lock_wait=1)
    finally:
        reader.execute("ROLLBACK")
        reader.close()
    assert time.monotonic() - started < 15
    assert (info.value.reason, info.value.changed) == ("lock-timeout", False)
    with sqlite.connect(db) as conn:
        assert conn.execute("SELECT a FROM t ORDER BY a").fetchall() == [
            (1,), (2,)]
    backup.restore(url, taken, lock_wait=1)
    with sqlite.connect(db) as conn:
        assert conn.execute("SELECT a FROM t").fetchall() == [(1,)]
