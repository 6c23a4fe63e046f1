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
import shutil
import subprocess
import tempfile
from typing import Any, Iterator

from mistral_db_flows import backup_errors
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
    query = {k: (v[-1] if isinstance(v, tuple) else v)
             for k, v in u.query.items()}
    lines = ["[client]"]
    for key, value in (("user", u.username), ("password", u.password),
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
        _tool(u, backup_errors.BackupError, "a MySQL/MariaDB backup", names)

    def fail(message: str) -> backup_errors.BackupError:
        return backup_errors.BackupError(
            "cannot measure the database %s before its backup: %s"
            % (u.database, common.scrub(message, u.password)),
            reason="unreachable", database=u.database)

    with common.connection(u, fail) as handle:
        data = int(handle.rows(_SIZES)[0][0] or 0)
    return data // MIN_RATIO


def dump(u: Any, fd: int, path: str) -> None:
    tool = _tool(u, backup_errors.BackupError, "a MySQL/MariaDB backup",
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
                   sink=fd, error=backup_errors.BackupError,
                   database=u.database, what="dump of %s" % u.database,
                   secret=u.password)


@functools.lru_cache(maxsize=None)
def _is_oracle(tool: str) -> bool:
    """Oracle's mysqldump wants --set-gtid-purged=OFF to make a dump
    loadable without SUPER; MariaDB's does not know the option."""
    out = subprocess.run([tool, "--version"], capture_output=True,
                         text=True, check=False).stdout
    return "MariaDB" not in out


def check_restore(u: Any, path: str) -> None:
    """Client present and the dump complete, before anything drops."""
    _tool(u, backup_errors.RestoreError, "a MySQL/MariaDB restore",
          CLIENT_TOOLS)
    with open(path, "rb") as dump_file:
        dump_file.seek(max(0, os.path.getsize(path) - 512))
        if COMPLETED not in dump_file.read():
            raise backup_errors.RestoreError(
                "the backup %s is incomplete (no end marker); refusing to "
                "restore it" % path, reason="unusable-backup",
                database=u.database, path=path)


def _drop_everything(u: Any) -> None:
    def q(name: str) -> str:
        # %s parameter style: a literal % in a statement is written %%.
        return "`%s`" % name.replace("`", "``").replace("%", "%%")

    def fail(message: str) -> backup_errors.RestoreError:
        return backup_errors.RestoreError(
            "could not empty %s before restoring it: %s"
            % (u.database, common.scrub(message, u.password)),
            reason="tool-failed", database=u.database, changed=True)

    # DROP commits implicitly; the final commit ends the reads' snapshot.
    with common.connection(u, fail) as handle:
        handle.execute("SET FOREIGN_KEY_CHECKS = 0").close()
        rows = handle.rows(_OBJECTS)
        views = [q(n) for n, kind in rows if kind == "VIEW"]
        tables = [q(n) for n, kind in rows if kind != "VIEW"]
        if views:
            handle.execute("DROP VIEW IF EXISTS " + ", ".join(views)).close()
        if tables:
            handle.execute("DROP TABLE IF EXISTS " +
                           ", ".join(tables)).close()
        for name, kind in handle.rows(_ROUTINES):
            handle.execute("DROP %s IF EXISTS %s" % (kind, q(name))).close()
        handle.commit()


def restore(u: Any, path: str, fd: int) -> None:
    """Empty the database, then load the dump read from ``fd``."""
    client = _tool(u, backup_errors.RestoreError, "a MySQL/MariaDB restore",
                   CLIENT_TOOLS)
    _drop_everything(u)
    with option_file(u) as options:
        common.run([client, "--defaults-extra-file=" + options,
                    "--batch", _MAX_PACKET, _CHARSET, "--", u.database],
                   env=dict(os.environ), source=fd,
                   error=backup_errors.RestoreError, database=u.database,
                   what="loading %s into %s (the database is part-restored;"
                   " run the restore again)" % (path, u.database),
                   secret=u.password, path=path, changed=True)
