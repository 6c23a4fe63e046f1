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
from typing import Any, Callable

from mistral_db_flows import exceptions
from mistral_db_flows import urls
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
#
# Every table is locked first, one by one in name order: a lock another
# session holds (an open transaction that read a table) then stops the
# restore at that table's LOCK, which the error names (a DROP ... CASCADE
# would wait on whichever table a foreign key or view leads it to). A
# wait longer than lock_timeout is re-raised as LOCK_TIMEOUT_MARK plus
# the statement that waited; the transaction then rolls back.
LOCK_TIMEOUT_MARK = "mdf-lock-timeout: "
DROP_PUBLIC = r"""
DO $mdf$
DECLARE
  statement text;
BEGIN
  FOREACH statement IN ARRAY ARRAY(
    SELECT format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE',
                  n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
      AND (c.tableoid, c.oid) NOT IN (
        SELECT classid, objid FROM pg_depend WHERE deptype = 'e')
    ORDER BY c.relname)
  LOOP
    EXECUTE statement;
  END LOOP;
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
EXCEPTION WHEN lock_not_available THEN
  RAISE EXCEPTION USING ERRCODE = 'lock_not_available',
    MESSAGE = '""" + LOCK_TIMEOUT_MARK + r"""' || statement;
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


def environment(u: urls.Url) -> dict[str, str]:
    """libpq variables for the tools; the password only ever here."""
    env = dict(os.environ)
    query = u.options
    host = u.host or query.get("host")
    for var, value in (("PGHOST", host), ("PGPORT", u.port),
                       ("PGUSER", u.user), ("PGDATABASE", u.database),
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
    pg_dump, _, _ = _tools(u, exceptions.BackupError,
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
        raise exceptions.BackupError(
            "pg_dump %d cannot dump a PostgreSQL %d server; install the "
            "client tools of version %d or newer"
            % (tool, server // 10000, server // 10000),
            reason="tool-version", database=u.database, tool=pg_dump)
    return data // MIN_RATIO


def _query_sizes(u: Any) -> tuple[int, int]:
    def fail(message: str) -> exceptions.BackupError:
        return exceptions.BackupError(
            "cannot measure the database %s before its backup: %s"
            % (u.database, message.strip()),
            reason="unreachable", database=u.database)

    with common.connection(u, fail) as handle:
        server, data = handle.rows(_SIZES)[0]
    return int(server), int(data)


def dump(u: Any, fd: int, path: str) -> None:
    pg_dump, = _tools(u, exceptions.BackupError, "a PostgreSQL backup",
                      ("pg_dump",))
    common.run([pg_dump, "--format=custom", "--compress=" + COMPRESSION,
                "--no-password"],
               env=environment(u), sink=fd, error=exceptions.BackupError,
               database=u.database, what="pg_dump of %s" % u.database)


def check_restore(u: Any, path: str) -> None:
    """Tools present and the archive readable, before anything drops."""
    pg_restore, _ = _tools(u, exceptions.RestoreError,
                           "a PostgreSQL restore", ("pg_restore", "psql"))
    common.run([pg_restore, "--list", path], env=environment(u),
               error=exceptions.RestoreError, database=u.database,
               what="reading the backup %s" % path,
               path=path, changed=False)


def restore(u: Any, path: str, fd: int, *,
            lock_wait: float = common.DEFAULT_LOCK_WAIT) -> None:
    """Drop the public schema's objects and load the archive, in one
    transaction; ``fd`` is the open archive (read as pg_restore's
    stdin so the caller can follow its position).

    pg_restore's script reaches psql through us: the transaction is
    committed only once pg_restore has succeeded. (psql's own
    --single-transaction would commit whatever arrived, even a script
    cut short by a pg_restore failure.)

    No lock is waited for longer than ``lock_wait`` seconds
    (``lock_timeout``, set before the drops and again after the header
    of pg_restore's script, which sets it to 0): a lock another session
    holds rolls the whole restore back and raises ``RestoreError`` with
    reason ``lock-timeout``.
    """
    pg_restore, psql = _tools(u, exceptions.RestoreError,
                              "a PostgreSQL restore", ("pg_restore", "psql"))
    limit = common.lock_wait_limit(lock_wait, unit=0.001,
                                   most=_MAX_LOCK_TIMEOUT_MS)
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
            _feed(reader, writer, limit)
        finally:
            for proc in (reader, writer):
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        failed = [
            "%s exited with %d: %s" % (name, proc.returncode,
                                       common.tail(err))
            for name, proc, err in (("pg_restore", reader, reader_err),
                                    ("psql", writer, writer_err))
            if proc.returncode != 0]
        locked = (lock_timeout(common.tail(writer_err))
                  if writer.returncode != 0 else None)
    if locked is not None:
        # psql stopped at the wait (pg_restore then lost its reader).
        kind, name = locked
        raise common.lock_timeout_error(
            u.database, path, limit / 1000, table=name, kind=kind,
            changed=False, outcome="the database is unchanged (the "
            "transaction was rolled back)")
    if failed:
        raise exceptions.RestoreError(
            "restoring %s from %s failed, the database is unchanged (the "
            "transaction was rolled back): %s"
            % (u.database, path, "; ".join(failed)),
            reason="tool-failed", database=u.database, path=path,
            changed=False)


# lock_timeout's largest value, in milliseconds.
_MAX_LOCK_TIMEOUT_MS = 2 ** 31 - 1
_MARKED = re.compile(
    re.escape(LOCK_TIMEOUT_MARK)
    + r"(?:LOCK (?P<lock>TABLE)|DROP (?P<drop>[A-Z ]+?) IF EXISTS) "
    r"(?P<name>.+?)(?: IN ACCESS EXCLUSIVE MODE| CASCADE)?$", re.M)
# Outside our drops (in pg_restore's script) only the server's own
# words tell; they are English unless the server's lc_messages differ.
_UNMARKED = "canceling statement due to lock timeout"


def lock_timeout(stderr: str) -> tuple[str, str | None] | None:
    """``(kind, name)`` of what psql's error says a lock wait timed out
    on (name None when it does not say), or None for other errors."""
    match = _MARKED.search(stderr)
    if match:
        name = match["name"]
        if name.startswith("public."):
            name = name[len("public."):]
        kind = (match["lock"] or match["drop"]).lower()
        return kind, name
    if _UNMARKED in stderr:
        return "table", None
    return None


def _begin(limit_ms: int) -> bytes:
    return ("BEGIN;\nSET lock_timeout = %d;\nSET client_min_messages = "
            "warning;\n%s;\n" % (limit_ms, DROP_PUBLIC.strip())).encode()


# The lines of the header of pg_restore's script (comments, psql's
# \restrict, one-line SETs), which sets lock_timeout = 0 among others.
_HEADER_LINE = re.compile(
    rb"(?:--.*|\\.*|SET [^;]*;|SELECT pg_catalog\.set_config\([^;]*;)?")
_HEADER_MAX = 1 << 16


def split_header(read: Callable[[], bytes]) -> tuple[bytes, bytes]:
    """Read the start of pg_restore's script with ``read``: its header
    (whole lines), and what was read beyond it.

    The header ends at the first line that is not a comment, a psql
    meta-command or a one-line SET (or after 64 KiB, or at the end).
    """
    data = b""
    end = 0
    while True:
        newline = data.find(b"\n", end)
        if newline < 0:
            chunk = b"" if len(data) >= _HEADER_MAX else read()
            if not chunk:
                return data[:end], data[end:]
            data += chunk
            continue
        if not _HEADER_LINE.fullmatch(data[end:newline]):
            return data[:end], data[end:]
        end = newline + 1


def _feed(reader: subprocess.Popen, writer: subprocess.Popen,
          limit_ms: int) -> None:
    """BEGIN + drops, then pg_restore's script (our lock_timeout again
    after its header), then COMMIT only if pg_restore succeeded; psql
    rolls back at end of input otherwise.

    Both tools see only pipes we own: should we die, pg_restore gets
    SIGPIPE and psql end-of-file without COMMIT, so the transaction
    rolls back and nothing runs on behind a resumed run's back.
    """
    assert reader.stdout is not None and writer.stdin is not None
    source, sink = reader.stdout.fileno(), writer.stdin.fileno()
    common.widen(source)
    common.widen(sink)
    try:
        common.write_all(sink, _begin(limit_ms))
        header, rest = split_header(lambda: os.read(source, 1 << 16))
        common.write_all(sink, header + b"SET lock_timeout = %d;\n"
                         % limit_ms + rest)
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
