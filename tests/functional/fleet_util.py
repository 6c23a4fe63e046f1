"""A fleet on this machine for the fleet tests: a shared PostgreSQL
logbook, a Redis board of its own, targets, conductors and posts as
subprocesses of the console script.

Everything is named uniquely per test and removed afterwards: the
board's Redis keys (its namespace only), the logbook database, the
conductors (SIGKILLed if a test left one running).
"""
from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from tests import conftest
from tests import dbs
from tests.functional import safety_util as su

REDIS_HOST = os.environ.get("MDF_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("MDF_TEST_REDIS_PORT", "6379"))
REDIS_DB = 0
JOBBOARD = "redis://%s:%d/%d" % (REDIS_HOST, REDIS_PORT, REDIS_DB)
# Trust authentication on the test server ignores it; it must still
# never reach Redis or the logbook.
SECRET = "fleet-secret-%s" % uuid.uuid4().hex[:10]
RUNNING_JOB = re.compile(r"running job ([0-9a-f-]{36})")


def require_redis() -> Any:
    """A Redis client, or skip (fail under CI) when there is none."""
    try:
        import redis
    except ImportError as exc:
        _unavailable("the redis package is not installed: %s" % exc)
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB,
                         socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        _unavailable("Redis not reachable at %s:%d: %s"
                     % (REDIS_HOST, REDIS_PORT, exc))
    return client


def _unavailable(reason: str) -> None:
    if conftest.IN_CI:
        pytest.fail("%s (CI must run the fleet tests)" % reason)
    pytest.skip(reason)


def with_password(url: str) -> str:
    """``url`` with SECRET as its password (when it has none)."""
    u = sa.engine.make_url(url)
    if u.password:
        return url
    return u.set(password=SECRET).render_as_string(hide_password=False)


class Fleet:
    """One fleet: board, logbook, targets and the processes started."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.redis = require_redis()
        conftest._require("postgresql")
        self.folder = folder
        self.board = "mdf-test-%s" % uuid.uuid4().hex[:12]
        self.targets_dir = folder / "targets"
        self.targets_dir.mkdir(parents=True)
        self.logbook_url = with_password(dbs.create("postgresql", folder))
        self.config = folder / "fleet.conf"
        self.config.write_text(
            "[db_manage]\nlogbook_connection = %s\nlock_timeout = 120\n"
            % self.logbook_url)
        self.processes: list[subprocess.Popen] = []
        self.targets: dict[str, str] = {}

    # -- set-up ------------------------------------------------------------

    def add_target(self, name: str, url: str) -> None:
        self.targets[name] = url
        (self.targets_dir / ("%s.conf" % name)).write_text(
            "[database]\nconnection = %s\n" % url)

    def conductor_config(self, name: str, *, faults: bool) -> str:
        """The conductor host's own config: the shared logbook, its own
        state directory (backups), the fault plugins if asked."""
        lines = ["[db_manage]",
                 "logbook_connection = %s" % self.logbook_url,
                 "lock_timeout = 120",
                 "state_dir = %s" % (self.folder / name / "state")]
        if faults:
            lines.append("upgrade_tasks = %s" % su.FAULT_TASKS["upgrade"])
        path = self.folder / ("%s.conf" % name)
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def start_conductor(self, name: str, *, fault: str | None = None,
                        claim_expiry: float = 3) -> "Conductor":
        (self.folder / name).mkdir(exist_ok=True)
        env = dict(os.environ)
        env.pop("MDF_FAULT", None)
        env["XDG_STATE_HOME"] = str(self.folder / name / "xdg")
        env["MDF_FAULT_LOG"] = str(self.folder / "faults.log")
        if fault:
            env["MDF_FAULT"] = fault
        log = self.folder / name / "conductor.log"
        with open(log, "w") as err:
            proc = subprocess.Popen(
                [su.SCRIPT, "--config-file",
                 self.conductor_config(name, faults=True), "conductor",
                 "--jobboard", JOBBOARD, "--board", self.board,
                 "--targets-dir", str(self.targets_dir), "--claim-expiry",
                 str(claim_expiry)],
                env=env, stdout=subprocess.DEVNULL, stderr=err)
        self.processes.append(proc)
        return Conductor(name, proc, log)

    def post(self, target: str, *operation: str, wait: bool = True,
             extra: tuple = ()) -> subprocess.Popen:
        argv = [su.SCRIPT, "--config-file", str(self.config), "--format",
                "json", "post", "--jobboard", JOBBOARD, "--board",
                self.board, "--target", target, *extra]
        if wait:
            # A fleet that cannot run the job fails the test, not hangs.
            argv += ["--wait", "--timeout", "400"]
        proc = subprocess.Popen(argv + list(operation),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.processes.append(proc)
        return proc

    # -- what is stored ----------------------------------------------------

    def redis_keys(self) -> list[bytes]:
        return list(self.redis.scan_iter(
            match="mistral-db-flows.%s*" % self.board))

    def redis_contents(self) -> bytes:
        """Every key of the board and every value in it."""
        out = []
        for key in self.redis_keys():
            out.append(key)
            kind = self.redis.type(key)
            if kind == b"hash":
                for field, value in self.redis.hgetall(key).items():
                    out += [field, value]
            elif kind == b"string":
                out.append(self.redis.get(key) or b"")
            else:
                out.append(repr(self.redis.dump(key)).encode())
        return b"\n".join(out)

    def logbook_contents(self) -> str:
        """Every row of every table of the shared logbook, as text."""
        engine = sa.create_engine(self.logbook_url,
                                  poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                out = []
                for table in sa.inspect(conn).get_table_names():
                    for row in conn.execute(sa.text(
                            'SELECT * FROM "%s"' % table)):
                        out.append(repr(tuple(row)))
                return "\n".join(out)
        finally:
            engine.dispose()

    def faults_fired(self) -> list[str]:
        path = self.folder / "faults.log"
        return path.read_text().splitlines() if path.exists() else []

    # -- tear-down ---------------------------------------------------------

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate()
        for key in self.redis_keys():
            self.redis.delete(key)
        self.redis.close()
        dbs.drop(self.logbook_url)


class Conductor:
    def __init__(self, name: str, proc: subprocess.Popen,
                 log: pathlib.Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    def text(self) -> str:
        return self.log.read_text()

    def jobs_started(self) -> list[str]:
        return RUNNING_JOB.findall(self.text())

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, and its exit code once it stopped."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def wait_for(predicate: Any, timeout: float, what: str,
             poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out: %s" % what
        time.sleep(poll)
