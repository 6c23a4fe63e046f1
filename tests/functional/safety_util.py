"""Helpers for the safety tests: seeded rows, checksums, runs, faults.

* ``prepare(url, start)`` makes a database at ``start`` with two seeded
  rows in every table (one with every column filled, one with nullable
  columns NULL), seeding again at each ``SEED_AT`` revision passed on
  the way so tables created later have rows too;
* ``state(url)`` is the schema plus a checksum of every row of every
  table (``alembic_version`` included); ``sqlite_bytes(url)`` the file
  itself for byte comparisons;
* ``expected_head_state(backend, start)`` is what an uninterrupted
  ``upgrade head`` makes of such a database (cached per process):
  a killed and resumed run must end in exactly that;
* ``Tool`` runs the console script with a config file of its own, with
  or without the fault plugins (tests/plugins/mdf_fault).
"""
from __future__ import annotations

import atexit
import dataclasses
import contextlib
import datetime
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
import zlib
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from mistral_db_flows import migration
from mistral_db_flows import version_table
from mistral_db_flows import schema_dump
from tests import conftest
from tests import dbs

HEAD = "045"
SCRIPT = shutil.which("mistral-db-manage",
                      path=os.path.dirname(sys.executable)) or \
    shutil.which("mistral-db-manage")
PLUGIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "plugins" / \
    "mdf_fault"
FAULT_TASKS = {
    "upgrade": "fault_backup, fault_check_branches, fault_migrate, "
               "fault_verify",
    "stamp": "fault_backup, fault_check_branches, fault_stamp, "
             "fault_verify",
    "populate": "fault_backup, fault_populate, fault_verify",
    "downgrade": "fault_check_branches, fault_downgrade",
}
# Revisions at which tables appear that earlier seeding cannot reach.
SEED_AT = ("008", "019", "040", "044")
BACKEND_MARKS = {"postgresql": (pytest.mark.postgresql,),
                 "mysql": (pytest.mark.mysql,)}
EXIT_ERROR = 1
EXIT_UNREACHABLE = 3
EXIT_STEP_FAILED = 7
EXIT_BACKUP_FAILED = 8
EXIT_RESTORE_FAILED = 9
EXIT_LOCKED = 11
EXIT_REFUSED = 12


# -- seeding ---------------------------------------------------------------

_WHEN = datetime.datetime(2021, 2, 3, 4, 5, 6)


def _value(column: Any, table: str, tag: str, i: int) -> Any:
    """A deterministic value fitting the column's type."""
    kind = column["type"]
    if isinstance(kind, sa.Boolean):
        return i % 2 == 1
    if isinstance(kind, (sa.DateTime, sa.Date)):
        return _WHEN + datetime.timedelta(days=i, hours=len(tag))
    if isinstance(kind, (sa.Integer, sa.Numeric)):
        # MySQL booleans are TINYINT(1): keep integers 0/1.
        if str(kind).upper().startswith("TINYINT"):
            return i % 2
        # Apart per seeding (integer keys), clear of rows a migration
        # adds (mistral_metrics' id 1).
        return 1000 + zlib.crc32(tag.encode()) % 100000 * 10 + i
    if isinstance(kind, sa.LargeBinary):
        return ("%s-%d" % (tag, i)).encode()
    length = getattr(kind, "length", None)
    if column["name"] == "spec" or isinstance(kind, sa.Text) and not length:
        text = json.dumps({"name": "%s-%s-%d" % (table, tag, i),
                           "type": "direct", "action": "std.noop",
                           "tasks": {"t%d" % i: {"action": "std.echo"}}})
    else:
        text = "%s-%s-%s-%d" % (tag, table, column["name"], i)
    if length:
        # Keep tag and row number (they make unique keys unique).
        head = "%s%d-" % (tag, i)
        text = (head + text)[:length]
    return text


def _insert_rows(conn: sa.Connection, tag: str) -> None:
    insp = sa.inspect(conn)
    md = sa.MetaData()
    md.reflect(conn)
    rows: dict[str, list[dict]] = {}
    with warnings.catch_warnings():
        # task and workflow executions refer to each other: SQLAlchemy
        # warns and orders them ignoring those keys, which is fine
        # (a key to a table not seeded yet is left NULL).
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        tables = md.sorted_tables
    for table in tables:
        if table.name == "alembic_version" or table.name.startswith("_") \
                or schema_dump.ignored(table.name):
            # (Kept revert data is ours, not Mistral's.)
            continue
        columns = insp.get_columns(table.name)
        fks = {fk["constrained_columns"][0]: fk
               for fk in insp.get_foreign_keys(table.name)
               if len(fk["constrained_columns"]) == 1}
        made = []
        for i in (1, 2):
            row = {}
            for column in columns:
                name = column["name"]
                fk = fks.get(name)
                if fk is not None:
                    parent = fk["referred_table"]
                    key = fk["referred_columns"][0]
                    if parent == table.name:
                        row[name] = made[0][key] if made else None
                    elif rows.get(parent):
                        pick = rows[parent][min(i, len(rows[parent])) - 1]
                        row[name] = pick[key] if i == 1 or \
                            not column["nullable"] else None
                    else:
                        row[name] = None
                    continue
                if i == 2 and column["nullable"] and not \
                        column.get("primary_key"):
                    row[name] = None
                    continue
                row[name] = _value(column, table.name, tag, i)
            made.append(row)
        conn.execute(table.insert(), made)
        rows[table.name] = made


def seed(url: str, tag: str) -> None:
    """Two rows in every table; ``tag`` keeps each seeding's ids apart."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            _insert_rows(conn, tag)
    finally:
        engine.dispose()


# SQLite files prepared by this process, by start revision: a new SQLite
# database gets a copy (the same bytes the migrations and seeds would
# write, in a fraction of the time; dozens of safety tests start so).
_PREPARED: dict[str, str] = {}


def prepare(url: str, start: str) -> None:
    """The database at ``start``, seeded at every SEED_AT on the way."""
    path = sqlite_path(url)
    if not path or os.path.exists(path):
        _migrate_and_seed(url, start)
        return
    if start not in _PREPARED:
        _migrate_and_seed(url, start)
        kept = pathlib.Path(tempfile.gettempdir(), "mdf-prepared-%d-%s-%s"
                            % (os.getpid(), uuid.uuid4().hex[:8], start))
        shutil.copyfile(path, kept)
        _PREPARED[start] = str(kept)
        return
    shutil.copyfile(_PREPARED[start], path)


@atexit.register
def _forget_prepared() -> None:
    for kept in _PREPARED.values():
        with contextlib.suppress(OSError):
            os.unlink(kept)


def _migrate_and_seed(url: str, start: str) -> None:
    for i, rev in enumerate(SEED_AT):
        if int(rev) > int(start):
            break
        migration.upgrade(url, rev)
        seed(url, "s%d" % i)
    migration.upgrade(url, start)
    if int(start) not in [int(r) for r in SEED_AT]:
        seed(url, "s%s" % start)


# -- state and checksums ---------------------------------------------------

# Set from the clock by a migration (044 stamps mistral_metrics' rows).
VOLATILE = {"mistral_metrics": {"created_at", "updated_at"}}


def _rows(conn: sa.Connection, table: str,
          ignore: frozenset = frozenset()) -> tuple[int, str]:
    insp = sa.inspect(conn)
    skip = VOLATILE.get(table, set()) | ignore
    columns = sorted(c["name"] for c in insp.get_columns(table)
                     if c["name"] not in skip)
    q = conn.dialect.identifier_preparer.quote
    result = conn.execute(sa.text("SELECT %s FROM %s" % (
        ", ".join(q(c) for c in columns), q(table))))
    rows = sorted(repr(tuple(row)) for row in result)
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.encode())
    return len(rows), digest.hexdigest()


def row_checksums(url: str, ignore: frozenset = frozenset()
                  ) -> dict[str, tuple[int, str]]:
    """Per table (``alembic_version`` included): row count and digest
    of its rows (in a fixed order), without the ``ignore`` columns."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            # The revert journal is ours, not Mistral's (its tests look
            # for it themselves).
            return {t: _rows(conn, t, ignore)
                    for t in sorted(sa.inspect(conn).get_table_names())
                    if t == "alembic_version"
                    or not schema_dump.ignored(t)}
    finally:
        engine.dispose()


def state(url: str) -> dict:
    """Schema and every row; equal states mean identical databases."""
    path = sqlite_path(url)
    if path is not None and not os.path.exists(path):
        return {"absent": path}
    schema = schema_dump.dump_url(url)
    for table in schema["tables"].values():
        # SQLite's keys are unnamed and their order in the CREATE TABLE
        # varies from one database to the next (SQLAlchemy keeps a
        # table's foreign keys in a set): order them by content.
        table["foreign_keys"] = sorted(table["foreign_keys"],
                                       key=lambda fk: json.dumps(
                                           fk, sort_keys=True, default=str))
    return {"schema": schema, "rows": row_checksums(url)}


def state_diff(got: Any, want: Any, path: str = "") -> list[str]:
    """Readable differences between two states (empty when equal)."""
    if got == want:
        return []
    if isinstance(got, dict) and isinstance(want, dict):
        out = []
        for key in sorted(set(got) | set(want), key=str):
            out += state_diff(got.get(key), want.get(key),
                              "%s/%s" % (path, key))
        return out
    if isinstance(got, list) and isinstance(want, list) \
            and len(got) == len(want):
        out = []
        for i, (a, b) in enumerate(zip(got, want)):
            out += state_diff(a, b, "%s[%d]" % (path, i))
        return out
    return ["%s: %s != %s" % (path, _short(got), _short(want))]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


def sqlite_path(url: str) -> str | None:
    u = sa.engine.make_url(url)
    return u.database if u.get_backend_name() == "sqlite" else None


def sqlite_bytes(url: str) -> bytes | None:
    """The SQLite file with the header's change counters zeroed (file
    change counter, schema cookie, version-valid-for: a restore bumps
    them on purpose so open connections notice); None if absent."""
    path = sqlite_path(url)
    if path is None or not os.path.exists(path):
        return None
    data = bytearray(pathlib.Path(path).read_bytes())
    if len(data) >= 100:
        for start in (24, 40, 92):
            data[start:start + 4] = b"\0" * 4
    return bytes(data)


def iterdump(url: str) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(sqlite_path(url))
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


_HEAD_STATES: dict[tuple[str, str], dict] = {}


def expected_head_state(backend: str, start: str) -> dict:
    """The state an uninterrupted upgrade gives a database prepared
    like ``prepare(url, start)`` (computed once per process)."""
    key = (backend, start)
    if key not in _HEAD_STATES:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="mdf-ref-"))
        url = dbs.create(backend, folder)
        try:
            prepare(url, start)
            migration.upgrade(url, HEAD)
            _HEAD_STATES[key] = state(url)
        finally:
            dbs.drop(url)
            shutil.rmtree(folder, ignore_errors=True)
    return _HEAD_STATES[key]


def version(url: str) -> str | None:
    found = version_table.read_version(url)
    return found[0] if found else None


# -- the fault plugins -----------------------------------------------------

def fault_plugins_installed() -> bool:
    from importlib import metadata

    names = {ep.name for ep in metadata.entry_points(
        group="mistral_db_flows.tasks")}
    return {"fault_backup", "fault_migrate", "fault_verify"} <= names


def require_fault_plugins() -> None:
    if fault_plugins_installed():
        return
    message = ("fault plugins not installed: pip install -e "
               "tests/plugins/mdf_fault")
    if conftest.IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclasses.dataclass(frozen=True)
class Case:
    """One fault on one database: the test's id, the (seeded) revision
    the database starts at, MDF_FAULT, and the step it strikes in."""

    id: str
    start: str
    fault: str
    step: str
    # For kills: the step's work reached the database before the kill,
    # so resumed it finds it done ("applied": false).
    work_done: bool = False


def matrix(cases: list, quick: set, skip: set = frozenset()) -> list:
    """``(backend, case)`` params for every backend and case but the
    ``(backend, case.id)`` pairs in ``skip``; all @slow but those in
    ``quick`` (a server's pair there is a ``smoke`` test, see
    tests/conftest.py)."""
    out = []
    for backend in dbs.BACKENDS:
        for case in cases:
            if (backend, case.id) in skip:
                continue
            marks = list(BACKEND_MARKS.get(backend, ()))
            if (backend, case.id) not in quick:
                marks.append(pytest.mark.slow)
            elif backend in BACKEND_MARKS:
                marks.append(pytest.mark.smoke)
            out.append(pytest.param(backend, case, marks=marks,
                                    id="%s-%s" % (backend, case.id)))
    return out


# -- running the console script --------------------------------------------

class Tool:
    """``mistral-db-manage`` on one database, in subprocesses.

    Each instance has its own state directory (logbook, backups) and
    writes config files next to it.
    """

    def __init__(self, url: str, folder: pathlib.Path, **options: Any):
        folder.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.folder = folder
        self.state_dir = folder / "state"
        self.options = options
        self.fault_log = folder / "faults.log"

    def config(self, *, faults: bool = False, operation: str = "upgrade",
               **options: Any) -> str:
        opts = dict(self.options, **options)
        lines = ["[database]", "connection = %s" % self.url,
                 "[db_manage]", "state_dir = %s" % self.state_dir]
        if faults:
            lines.append("%s_tasks = %s" % (operation,
                                            FAULT_TASKS[operation]))
        for key, value in opts.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            lines.append("%s = %s" % (key, value))
        path = self.folder / ("mdm-%s.conf" % uuid.uuid4().hex[:8])
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def env(self, fault: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MDF_FAULT", None)
        env["XDG_STATE_HOME"] = str(self.folder / "xdg")
        if fault:
            env["MDF_FAULT"] = fault
            env["MDF_FAULT_LOG"] = str(self.fault_log)
        return env

    def start(self, *argv: str, fault: str | None = None,
              operation: str | None = None, config: str | None = None,
              **options: Any) -> subprocess.Popen:
        operation = operation or (argv[0] if argv else "upgrade")
        if config is None:
            config = self.config(faults=fault is not None,
                                 operation=operation, **options)
        return subprocess.Popen(
            [SCRIPT, "--config-file", config, "--format", "json", *argv],
            env=self.env(fault), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    def run(self, *argv: str, fault: str | None = None,
            timeout: float = 300, **kwargs: Any) -> "Done":
        proc = self.start(*argv, fault=fault, **kwargs)
        out, err = proc.communicate(timeout=timeout)
        return Done(proc.returncode, out, err)

    def call(self, *argv: str, fault: str | None = None,
             config: str | None = None, operation: str | None = None,
             **options: Any) -> "Done":
        """Like ``run``, in this process (``cli.main``): faster."""
        import io

        from mistral_db_flows import cli

        operation = operation or (argv[0] if argv else "upgrade")
        if config is None:
            config = self.config(faults=fault is not None,
                                 operation=operation, **options)
        out, err = io.StringIO(), io.StringIO()
        saved = {k: os.environ.get(k) for k in ("MDF_FAULT",
                                                "MDF_FAULT_LOG")}
        os.environ.update({k: v for k, v in self.env(fault).items()
                           if k in saved})
        if not fault:
            os.environ.pop("MDF_FAULT", None)
        try:
            with contextlib.redirect_stdout(out), \
                    contextlib.redirect_stderr(err):
                code = cli.main(["--config-file", config, "--format",
                                 "json", *argv])
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return Done(code, out.getvalue(), err.getvalue())

    @contextlib.contextmanager
    def sleeping(self, *argv: str, fault: str,
                 **kwargs: Any) -> Iterator[subprocess.Popen]:
        """A run started with a ``sleep`` fault, yielded once asleep
        (holding the lock); SIGKILLed when the block ends."""
        fired = len(self.faults_fired())
        proc = self.start(*argv, fault=fault, **kwargs)
        try:
            deadline = time.monotonic() + 120
            while len(self.faults_fired()) == fired:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    raise AssertionError("ended before its fault: %r"
                                         % Done(proc.returncode, out, err))
                assert time.monotonic() < deadline, "the fault never struck"
                time.sleep(0.1)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate()

    def faults_fired(self) -> list[str]:
        if not self.fault_log.exists():
            return []
        return self.fault_log.read_text().splitlines()


def assert_interrupted_then_resumes(tool: "Tool") -> None:
    """The run ``tool`` was running is recorded as interrupted, and the
    same command resumes it to head with the reference schema."""
    from tests import migrate_util

    status = tool.run("status")
    assert status.doc["interrupted"]["state"] == "running", status
    resumed = tool.run("upgrade", "head")
    assert resumed.code == 0, resumed
    assert resumed.doc["resumed"] is True
    assert version(tool.url) == HEAD
    assert migrate_util.schema_diff(tool.url, HEAD) == []


class Done:
    """A finished run: exit code, stdout, stderr, and the JSON result."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    @property
    def doc(self) -> dict:
        return json.loads(self.out) if self.out.strip() else {}

    @property
    def run(self) -> dict:
        """The Run document (also when it is inside an error)."""
        doc = self.doc
        return doc.get("error", {}).get("run") or doc

    def steps(self) -> dict[str, dict]:
        return {s["name"]: s for s in self.run.get("steps", [])}

    def error_line(self) -> str:
        """The one error line on stderr (asserted: exactly one, and no
        traceback anywhere on stderr)."""
        lines = [line for line in self.err.splitlines()
                 if line.startswith("mistral-db-manage: error:")]
        assert len(lines) == 1, self
        assert "Traceback" not in self.err, self
        return lines[0]

    def __repr__(self) -> str:
        return "Done(code=%r)\nstdout:\n%s\nstderr:\n%s" % (
            self.code, self.out[-3000:], self.err[-3000:])
