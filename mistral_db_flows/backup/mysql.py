"""MariaDB and MySQL: ``mariadb-dump`` (or ``mysqldump``) and the client.

The dump is one consistent InnoDB snapshot (``--single-transaction``)
with routines and triggers. A restore first drops every table, view and
routine of the database (objects created after the backup go too), then
loads the dump with the command-line client. MySQL cannot run DDL in a
transaction, so a failed restore leaves the database part-restored; it
is safe to run the restore again.

Credentials reach the tools through a 0600 option file in a private
temporary directory, removed afterwards: never on a command line.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any, Iterator

from mistral_db_flows import exceptions
from mistral_db_flows.backup import common

DUMP_TOOLS = ("mariadb-dump", "mysqldump")
CLIENT_TOOLS = ("mariadb", "mysql")
# Dumps are text; even one of compact rows is rarely under half of
# InnoDB's data length: a lower bound for the free-space check.
MIN_RATIO = 2
COMPLETED = b"-- Dump completed"
_MAX_PACKET = "--max-allowed-packet=1G"
_CHARSET = "--default-character-set=utf8mb4"

# The queries go through mistral_db_flows.dbapi (%s parameter style).
_SIZES = """
SELECT COALESCE(SUM(data_length), 0) FROM information_schema.tables
WHERE table_schema = DATABASE()
"""
_OBJECTS = """
SELECT table_name, table_type FROM information_schema.tables
WHERE table_schema = DATABASE()
"""
_ROUTINES = """
SELECT routine_name, routine_type FROM information_schema.routines
WHERE routine_schema = DATABASE()
"""


def _quote_option(value: str) -> str:
    """An option-file value: double-quoted, backslash escapes."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    return '"%s"' % escaped


def option_text(u: Any) -> str:
    """The ``[client]`` option file contents for ``u``."""
    query = u.options
    lines = ["[client]"]
    for key, value in (("user", u.user), ("password", u.password),
                       ("host", u.host), ("port", u.port),
                       ("socket", query.get("unix_socket")),
                       ("ssl-ca", query.get("ssl_ca")),
                       ("ssl-cert", query.get("ssl_cert")),
                       ("ssl-key", query.get("ssl_key"))):
        if value is not None:
            lines.append("%s=%s" % (key, _quote_option(str(value))))
    if "unix_socket" not in query:
        # The drivers reach "localhost" over TCP; the client would pick
        # the socket. Follow the drivers.
        lines.append("protocol=TCP")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def option_file(u: Any) -> Iterator[str]:
    """A private option file holding the credentials, then gone."""
    directory = tempfile.mkdtemp(prefix="mdf-mysql-")
    try:
        path = os.path.join(directory, "client.cnf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(option_text(u))
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _tool(u: Any, error: type, purpose: str, names: tuple) -> str:
    return common.find_tool(names, error=error, database=u.database,
                            purpose=purpose)


def check(u: Any, directory: str) -> int:
    """Tools present; a lower bound of the backup's size."""
    for names in (DUMP_TOOLS, CLIENT_TOOLS):
        _tool(u, exceptions.BackupError, "a MySQL/MariaDB backup", names)

    def fail(message: str) -> exceptions.BackupError:
        return exceptions.BackupError(
            "cannot measure the database %s before its backup: %s"
            % (u.database, message),
            reason="unreachable", database=u.database)

    with common.connection(u, fail) as handle:
        data = int(handle.rows(_SIZES)[0][0] or 0)
    return data // MIN_RATIO


def dump(u: Any, fd: int, path: str) -> None:
    tool = _tool(u, exceptions.BackupError, "a MySQL/MariaDB backup",
                 DUMP_TOOLS)
    with option_file(u) as options:
        argv = [tool, "--defaults-extra-file=" + options,
                "--single-transaction", "--routines", "--triggers",
                "--hex-blob", "--quick", "--no-tablespaces",
                "--skip-dump-date", "--no-autocommit", _MAX_PACKET,
                _CHARSET]
        if os.path.basename(tool) == "mysqldump" and _is_oracle(tool):
            argv.append("--set-gtid-purged=OFF")
        common.run(argv + ["--", u.database], env=dict(os.environ),
                   sink=fd, error=exceptions.BackupError,
                   database=u.database, what="dump of %s" % u.database)


@functools.lru_cache(maxsize=None)
def _is_oracle(tool: str) -> bool:
    """Oracle's mysqldump wants --set-gtid-purged=OFF to make a dump
    loadable without SUPER; MariaDB's does not know the option."""
    out = subprocess.run([tool, "--version"], capture_output=True,
                         text=True, check=False).stdout
    return "MariaDB" not in out


def check_restore(u: Any, path: str) -> None:
    """Client present and the dump complete, before anything drops."""
    _tool(u, exceptions.RestoreError, "a MySQL/MariaDB restore",
          CLIENT_TOOLS)
    with open(path, "rb") as dump_file:
        dump_file.seek(max(0, os.path.getsize(path) - 512))
        if COMPLETED not in dump_file.read():
            raise exceptions.RestoreError(
                "the backup %s is incomplete (no end marker); refusing to "
                "restore it" % path, reason="unusable-backup",
                database=u.database, path=path)


# ER_LOCK_WAIT_TIMEOUT: a metadata lock (lock_wait_timeout) or an InnoDB
# row lock (innodb_lock_wait_timeout) waited for too long.
LOCK_WAIT_TIMEOUT = 1205
# Both variables' largest value (MySQL's lock_wait_timeout), seconds.
_MAX_LOCK_WAIT = 31536000
_LOCK_WAITS = ("@@SESSION.lock_wait_timeout",
               "@@SESSION.innodb_lock_wait_timeout")


def _set_lock_waits(metadata: int, rows: int) -> str:
    """The statement setting the session's lock waits (seconds)."""
    return "SET " + ", ".join("%s = %d" % (name, int(value)) for name, value
                              in zip(_LOCK_WAITS, (metadata, rows)))


def _drop_everything(u: Any, path: str = "",
                     lock_wait: float = common.DEFAULT_LOCK_WAIT) -> None:
    """Drop every table, then every view and routine.

    Tables go first, in one statement: MariaDB and MySQL take the
    metadata locks of all its tables before dropping any, so a lock
    another session holds (an open transaction that read a table) stops
    the restore there, after at most ``lock_wait`` seconds, with the
    database unchanged.
    """
    def q(name: str) -> str:
        # %s parameter style: a literal % in a statement is written %%.
        return "`%s`" % name.replace("`", "``").replace("%", "%%")

    def fail(message: str) -> exceptions.RestoreError:
        return exceptions.RestoreError(
            "could not empty %s before restoring it: %s"
            % (u.database, message),
            reason="tool-failed", database=u.database, changed=True)

    seconds = common.lock_wait_limit(lock_wait, unit=1, most=_MAX_LOCK_WAIT)
    dropped = False

    def drop(handle: Any, statement: str) -> None:
        nonlocal dropped
        try:
            handle.execute(statement).close()
        except handle.driver_errors() as exc:
            if not exc.args or exc.args[0] != LOCK_WAIT_TIMEOUT:
                raise
            raise common.lock_timeout_error(
                u.database, path, seconds, table=None, changed=dropped,
                outcome="the database is part-restored (its tables were "
                "dropped, nothing loaded yet)" if dropped else
                "nothing was dropped, the database is unchanged") from None
        dropped = True

    # DROP commits implicitly; the final commit ends the reads' snapshot.
    with common.connection(u, fail) as handle:
        # The connection may be the run's shared one: its own lock
        # waits are put back afterwards.
        before = handle.rows("SELECT " + ", ".join(_LOCK_WAITS))[0]
        handle.execute(_set_lock_waits(seconds, seconds)).close()
        try:
            handle.execute("SET FOREIGN_KEY_CHECKS = 0").close()
            rows = handle.rows(_OBJECTS)
            views = [q(n) for n, kind in rows if kind == "VIEW"]
            tables = [q(n) for n, kind in rows if kind != "VIEW"]
            if tables:
                drop(handle, "DROP TABLE IF EXISTS " + ", ".join(tables))
            if views:
                drop(handle, "DROP VIEW IF EXISTS " + ", ".join(views))
            for name, kind in handle.rows(_ROUTINES):
                drop(handle, "DROP %s IF EXISTS %s" % (kind, q(name)))
            handle.commit()
        finally:
            with contextlib.suppress(Exception):
                handle.execute(_set_lock_waits(*before)).close()


def restore(u: Any, path: str, fd: int, *,
            lock_wait: float = common.DEFAULT_LOCK_WAIT) -> None:
    """Empty the database, then load the dump read from ``fd``.

    Both sessions wait at most ``lock_wait`` seconds for a lock
    (``lock_wait_timeout`` for metadata locks, ``innodb_lock_wait_timeout``
    for rows); a lock another session holds raises ``RestoreError`` with
    reason ``lock-timeout``.
    """
    client = _tool(u, exceptions.RestoreError, "a MySQL/MariaDB restore",
                   CLIENT_TOOLS)
    seconds = common.lock_wait_limit(lock_wait, unit=1, most=_MAX_LOCK_WAIT)
    _drop_everything(u, path, lock_wait)

    def classify(stderr: str) -> exceptions.RestoreError | None:
        if re.search(r"\bERROR %d\b" % LOCK_WAIT_TIMEOUT, stderr) is None:
            return None
        return common.lock_timeout_error(
            u.database, path, seconds, table=None, changed=True,
            outcome="the database is part-restored (MariaDB and MySQL "
            "cannot restore in one transaction)")

    with option_file(u) as options:
        common.run([client, "--defaults-extra-file=" + options,
                    "--init-command=" + _set_lock_waits(seconds, seconds),
                    "--batch", _MAX_PACKET, _CHARSET, "--", u.database],
                   env=dict(os.environ), source=fd,
                   error=exceptions.RestoreError, database=u.database,
                   what="loading %s into %s (the database is part-restored;"
                   " run the restore again)" % (path, u.database), classify=classify, path=path,
                   changed=True)
