"""PostgreSQL: ``pg_dump`` custom format; restore in one transaction.

The restore is ``pg_restore`` rendering the archive as SQL, piped into
``psql --single-transaction`` after a block that drops every object of
the public schema: objects created after the backup go too, and if
anything fails the transaction rolls back and the database is as it was
before the restore began.

Credentials reach the tools through libpq's environment variables, so
neither the password nor the user is ever on a command line.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from typing import Any

from mistral_db_flows import backup_errors
from mistral_db_flows.backup import common

# zlib level 1: most of the size gain of the default level (6) for a
# fraction of its CPU time; dumping is CPU-bound in pg_dump itself.
COMPRESSION = "1"
# A compressed dump of Mistral's tables (JSON text) is rarely under a
# tenth of their size: a lower bound for the free-space check.
MIN_RATIO = 10

_LIBPQ_QUERY = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
                "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
                "connect_timeout": "PGCONNECT_TIMEOUT"}

# Drops every object of the public schema that does not belong to an
# extension. The statements are all computed before the first drop, so
# a CASCADE cannot leave a name pointing at a dropped object; IF EXISTS
# skips what an earlier CASCADE already removed.
DROP_PUBLIC = r"""
DO $mdf$
DECLARE
  statement text;
BEGIN
  FOREACH statement IN ARRAY ARRAY(
    WITH extension_member AS (
      SELECT classid, objid FROM pg_depend WHERE deptype = 'e')
    SELECT s FROM (
      SELECT 1 AS step, format('DROP %s IF EXISTS %I.%I CASCADE',
        CASE c.relkind WHEN 'v' THEN 'VIEW'
                       WHEN 'm' THEN 'MATERIALIZED VIEW'
                       WHEN 'f' THEN 'FOREIGN TABLE'
                       WHEN 'S' THEN 'SEQUENCE'
                       ELSE 'TABLE' END,
        n.nspname, c.relname) AS s
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public'
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
        AND (c.tableoid, c.oid) NOT IN (TABLE extension_member)
      UNION ALL
      SELECT 2, format('DROP ROUTINE IF EXISTS %I.%I(%s) CASCADE',
                       n.nspname, p.proname,
                       pg_get_function_identity_arguments(p.oid))
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public'
        AND (p.tableoid, p.oid) NOT IN (TABLE extension_member)
      UNION ALL
      SELECT 3, format('DROP %s IF EXISTS %I.%I CASCADE',
                       CASE t.typtype WHEN 'd' THEN 'DOMAIN'
                                      ELSE 'TYPE' END,
                       n.nspname, t.typname)
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public'
        AND (t.typtype IN ('e', 'd', 'r')
             OR (t.typtype = 'c' AND EXISTS (
                   SELECT 1 FROM pg_class r
                   WHERE r.oid = t.typrelid AND r.relkind = 'c')))
        AND (t.tableoid, t.oid) NOT IN (TABLE extension_member)
    ) AS o ORDER BY step, s)
  LOOP
    EXECUTE statement;
  END LOOP;
END
$mdf$
"""

# Sent through mistral_db_flows.dbapi (%s parameter style): a literal %
# is written %%.
_SIZES = """
SELECT current_setting('server_version_num')::int,
       coalesce(sum(pg_table_size(c.oid)), 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
"""


def environment(u: Any) -> dict[str, str]:
    """libpq variables for the tools; the password only ever here."""
    env = dict(os.environ)
    query = {k: (v[-1] if isinstance(v, tuple) else v)
             for k, v in u.query.items()}
    host = u.host or query.get("host")
    for var, value in (("PGHOST", host), ("PGPORT", u.port),
                       ("PGUSER", u.username), ("PGDATABASE", u.database),
                       ("PGPASSWORD", u.password)):
        if value is not None:
            env[var] = str(value)
    for key, var in _LIBPQ_QUERY.items():
        if key in query:
            env[var] = str(query[key])
    env["PGAPPNAME"] = "mistral-db-manage backup"
    return env


def _tools(u: Any, error: type, purpose: str,
           names: tuple[str, ...]) -> list[str]:
    return [common.find_tool((name,), error=error, database=u.database,
                             purpose=purpose)
            for name in names]


def _major(version_text: str) -> int:
    match = re.search(r"\)\s*(\d+)", version_text)
    return int(match.group(1)) if match else 0


# pg_dump's major version by the tool's path: asked once per process.
_TOOL_MAJOR: dict[str, int] = {}


def check(u: Any, directory: str) -> int:
    """Tools present and recent enough; a lower bound of the size."""
    pg_dump, _, _ = _tools(u, backup_errors.BackupError,
                           "a PostgreSQL backup",
                           ("pg_dump", "pg_restore", "psql"))
    probe = None
    if pg_dump not in _TOOL_MAJOR:
        # Asked while the server measures the database.
        probe = subprocess.Popen([pg_dump, "--version"],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
    try:
        server, data = _query_sizes(u)
    finally:
        if probe is not None:
            _TOOL_MAJOR[pg_dump] = _major(probe.communicate()[0])
    tool = _TOOL_MAJOR[pg_dump]
    if tool and tool < server // 10000:
        raise backup_errors.BackupError(
            "pg_dump %d cannot dump a PostgreSQL %d server; install the "
            "client tools of version %d or newer"
            % (tool, server // 10000, server // 10000),
            reason="tool-version", database=u.database, tool=pg_dump)
    return data // MIN_RATIO


def _query_sizes(u: Any) -> tuple[int, int]:
    def fail(message: str) -> backup_errors.BackupError:
        return backup_errors.BackupError(
            "cannot measure the database %s before its backup: %s"
            % (u.database, common.scrub(message.strip(), u.password)),
            reason="unreachable", database=u.database)

    with common.connection(u, fail) as handle:
        server, data = handle.rows(_SIZES)[0]
    return int(server), int(data)


def dump(u: Any, fd: int, path: str) -> None:
    pg_dump, = _tools(u, backup_errors.BackupError, "a PostgreSQL backup",
                      ("pg_dump",))
    common.run([pg_dump, "--format=custom", "--compress=" + COMPRESSION,
                "--no-password"],
               env=environment(u), sink=fd, error=backup_errors.BackupError,
               database=u.database, what="pg_dump of %s" % u.database,
               secret=u.password)


def check_restore(u: Any, path: str) -> None:
    """Tools present and the archive readable, before anything drops."""
    pg_restore, _ = _tools(u, backup_errors.RestoreError,
                           "a PostgreSQL restore", ("pg_restore", "psql"))
    common.run([pg_restore, "--list", path], env=environment(u),
               error=backup_errors.RestoreError, database=u.database,
               what="reading the backup %s" % path, secret=u.password,
               path=path, changed=False)


def restore(u: Any, path: str, fd: int) -> None:
    """Drop the public schema's objects and load the archive, in one
    transaction; ``fd`` is the open archive (read as pg_restore's
    stdin so the caller can follow its position).

    pg_restore's script reaches psql through us: the transaction is
    committed only once pg_restore has succeeded. (psql's own
    --single-transaction would commit whatever arrived, even a script
    cut short by a pg_restore failure.)
    """
    pg_restore, psql = _tools(u, backup_errors.RestoreError,
                              "a PostgreSQL restore", ("pg_restore", "psql"))
    env = environment(u)
    with tempfile.TemporaryFile() as reader_err, \
            tempfile.TemporaryFile() as writer_err:
        reader = subprocess.Popen(
            [pg_restore, "--file=-", "--clean", "--if-exists"],
            stdin=fd, stdout=subprocess.PIPE, stderr=reader_err, env=env)
        writer = subprocess.Popen(
            [psql, "--no-psqlrc", "--quiet", "--no-password",
             "--set=ON_ERROR_STOP=1", "--file=-"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=writer_err, env=env)
        try:
            _feed(reader, writer)
        finally:
            for proc in (reader, writer):
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        failed = [
            "%s exited with %d: %s" % (name, proc.returncode,
                                       common.tail(err, u.password))
            for name, proc, err in (("pg_restore", reader, reader_err),
                                    ("psql", writer, writer_err))
            if proc.returncode != 0]
    if failed:
        raise backup_errors.RestoreError(
            "restoring %s from %s failed, the database is unchanged (the "
            "transaction was rolled back): %s"
            % (u.database, path, "; ".join(failed)),
            reason="tool-failed", database=u.database, path=path,
            changed=False)


_BEGIN = ("BEGIN;\nSET client_min_messages = warning;\n%s;\n"
          % DROP_PUBLIC.strip()).encode()


def _feed(reader: subprocess.Popen, writer: subprocess.Popen) -> None:
    """BEGIN + drops, then pg_restore's script, then COMMIT only if
    pg_restore succeeded; psql rolls back at end of input otherwise.

    Both tools see only pipes we own: should we die, pg_restore gets
    SIGPIPE and psql end-of-file without COMMIT, so the transaction
    rolls back and nothing runs on behind a resumed run's back.
    """
    assert reader.stdout is not None and writer.stdin is not None
    source, sink = reader.stdout.fileno(), writer.stdin.fileno()
    common.widen(source)
    common.widen(sink)
    try:
        common.write_all(sink, _BEGIN)
        common.pump(source, sink)
        if reader.wait() == 0:
            common.write_all(sink, b"COMMIT;\n")
    except BrokenPipeError:
        pass  # psql stopped on an error; its exit code tells
    finally:
        reader.stdout.close()
        with contextlib.suppress(BrokenPipeError):
            writer.stdin.close()
        writer.wait()
