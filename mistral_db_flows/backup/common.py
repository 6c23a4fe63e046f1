"""What the backup backends share: URLs, file names, external tools.

Nothing here imports a database driver at import time. URLs are read by
:mod:`mistral_db_flows.urls` (no SQLAlchemy) and connected to through
:mod:`mistral_db_flows.dbapi`.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
from typing import IO, Any, Callable, Iterator, Sequence

from mistral_db_flows import exceptions
from mistral_db_flows import urls

Progress = Callable[[int, "int | None"], None]

EXTENSIONS = {"sqlite": "sqlite", "postgresql": "pgdump", "mysql": "sql"}

# <database>-<key>-<UTC time>-<label>.<ext>: the key (a hash of the
# database identity without credentials) keeps two servers' databases of
# the same name apart; the time sorts backups of one database.
NAME_RE = re.compile(
    r"^(?P<database>[A-Za-z0-9_]+)-(?P<key>[0-9a-f]{8})-"
    r"(?P<stamp>\d{8}T\d{12}Z)-(?P<label>[A-Za-z0-9_]+)"
    r"\.(?P<ext>sqlite|pgdump|sql)$")
PARTIAL_RE = re.compile(r"^(?P<final>.+)\.(?P<pid>\d+)\.partial$")
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
_STDERR_TAIL = 2000

# How long a restore waits, by default, for a lock another session holds
# on something it must drop or load: the run lock's default wait
# (``conf.DEFAULT_LOCK_TIMEOUT``, not imported: it would bring
# oslo.config into the backup package).
DEFAULT_LOCK_WAIT = 300.0


def parse(url: str) -> urls.Url:
    """``url`` read; one that cannot be is a BackupError."""
    try:
        return urls.parse(url)
    except urls.UrlError as exc:
        raise exceptions.BackupError(
            "cannot parse the database URL %s: %s" % (exc.url, exc.reason),
            reason="unsupported") from None


def url_text(u: urls.Url) -> str:
    """The URL to connect with (password included: never print it)."""
    return u.text or u.render(hide_password=False)


def _driver_text(exc: BaseException) -> str:
    """The driver's own message behind ``dbapi``'s DatabaseUnreachable
    (SQLAlchemy's wrapper unwrapped), as the backup messages give it."""
    cause = exc.__context__
    cause = getattr(cause, "orig", None) or cause
    if isinstance(cause, Exception):
        return str(cause)
    return str(getattr(exc, "reason", exc))


@contextlib.contextmanager
def connection(u: urls.Url, fail: Callable[[str], Exception]) -> Iterator[Any]:
    """A plain DB-API connection (``dbapi.Handle``) to ``u``, closed
    afterwards; a driver error, connecting or later, raises
    ``fail(the driver's message, any URL's password hidden)`` instead."""
    from mistral_db_flows import dbapi

    text = url_text(u)
    try:
        handle = dbapi.connect(text)
    except exceptions.DatabaseUnreachable as exc:
        raise fail(urls.mask_text(_driver_text(exc), (text,))) from None
    try:
        try:
            yield handle
        except handle.driver_errors() as exc:
            raise fail(urls.mask_text(str(exc), (text,))) from None
    finally:
        handle.close()


def backend(u: urls.Url) -> str:
    """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB included)."""
    if u.backend not in EXTENSIONS:
        raise exceptions.BackupError(
            "backups of %s databases are not supported" % u.backend,
            reason="unsupported", database=u.database)
    return u.backend


def sqlite_path(u: urls.Url) -> str:
    path = u.sqlite_path
    if path is None:
        raise exceptions.BackupError(
            "an in-memory SQLite database cannot be backed up: give a "
            "file path", reason="unsupported", database=u.database or "")
    return os.path.realpath(path)


def database_name(u: urls.Url) -> str:
    """The database's name as people say it (SQLite: the file path)."""
    if backend(u) == "sqlite":
        return sqlite_path(u)
    return u.database or ""


def safe(text: str, limit: int = 40) -> str:
    """A file-name-safe rendering of ``text``."""
    return (_UNSAFE.sub("_", text).strip("_") or "db")[:limit]


def file_name(u: urls.Url, label: str, created: datetime.datetime, *,
              identity: str) -> str:
    """``identity`` is the database's (see ``identity``): every URL of
    one database gives its backups one key, pruned together."""
    kind = backend(u)
    name = database_name(u)
    if kind == "sqlite":
        name = os.path.splitext(os.path.basename(name))[0]
    key = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return "%s-%s-%s-%s.%s" % (safe(name), key,
                               created.strftime(STAMP_FORMAT),
                               safe(label), EXTENSIONS[kind])


def prepare_directory(directory: str, *, database: str) -> str:
    """Create ``directory`` (0700) if needed; prove we can write there."""
    path = os.path.abspath(directory)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".mdf-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise exceptions.BackupError(
            "cannot write backups into %s: %s"
            % (path, exc.strerror or exc), reason="no-permission",
            database=database, path=path) from None
    return path


@contextlib.contextmanager
def new_file(final: str) -> Iterator[tuple[int, str]]:
    """Yield fd and path of a 0600 partial file that becomes ``final``
    only once complete (a crash leaves ``<final>.<pid>.partial``, never a
    truncated backup under a real name)."""
    partial = "%s.%d.partial" % (final, os.getpid())
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        yield fd, partial
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    os.close(fd)
    os.rename(partial, final)
    dir_fd = os.open(os.path.dirname(final), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def find_tool(candidates: Sequence[str], *, error: type,
              database: str, purpose: str) -> str:
    """The first of ``candidates`` on PATH, or a clear error."""
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    raise error(
        "%s needs %s, which is not on PATH; install the database client "
        "tools (or use --no-backup with your own backups)"
        % (purpose, " or ".join(candidates)), reason="tool-missing",
        database=database, tool=candidates[0])


def tail(stream: IO[bytes]) -> str:
    """The end of a tool's stderr, printable, any URL's or connection
    string's password hidden (the tools get theirs from the environment
    or an option file, never on the command line)."""
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - _STDERR_TAIL))
    return urls.mask_text(stream.read().decode("utf-8", "replace").strip())


def run(argv: Sequence[str], *, env: dict[str, str],
        source: int | None = None, sink: int | None = None,
        error: type, database: str, what: str,
        classify: Callable[[str], Exception | None] | None = None,
        **facts: Any) -> None:
    """Run one tool, pumping the file ``source`` into its stdin and its
    stdout into the file ``sink`` (else /dev/null).

    The tool only ever sees pipes we own: if we die, even by SIGKILL, it
    reads end-of-file or gets SIGPIPE and stops, instead of going on
    loading or dumping behind a resumed run's back. A non-zero exit
    raises ``error`` naming the tool and the end of its stderr, unless
    ``classify(the end of its stderr)`` returns an error to raise
    instead.
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            list(argv), env=env, stderr=err, close_fds=True,
            stdin=subprocess.DEVNULL if source is None else subprocess.PIPE,
            stdout=subprocess.DEVNULL if sink is None else subprocess.PIPE)
        try:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    widen(pipe.fileno())
            if source is not None:
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):
                    pump(source, proc.stdin.fileno())
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
            if sink is not None:
                assert proc.stdout is not None
                pump(proc.stdout.fileno(), sink)
                proc.stdout.close()
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if code != 0:
            stderr = tail(err)
            known = classify(stderr) if classify is not None else None
            if known is not None:
                raise known
            raise error("%s failed: %s exited with %d: %s"
                        % (what, os.path.basename(argv[0]), code,
                           stderr or "(no message)"),
                        reason="tool-failed", database=database, **facts)


def lock_wait_limit(lock_wait: float, *, unit: float, most: int) -> int:
    """``lock_wait`` seconds as a whole number of ``unit`` seconds, at
    least 1 (a server's 0 may mean "wait forever") and at most ``most``
    (the server's maximum)."""
    wait = float(lock_wait)
    if math.isnan(wait):
        raise ValueError("lock_wait must be a number of seconds, got %r"
                         % (lock_wait,))
    if wait >= most * unit:
        return most
    return max(1, math.ceil(wait / unit - 1e-9))


def lock_timeout_error(database: str, path: str, waited: float, *,
                       table: str | None, changed: bool, outcome: str,
                       kind: str = "table") -> exceptions.RestoreError:
    """The restore gave up waiting for a lock another session holds.

    ``outcome`` says what state that left the database in; ``table``
    names what was locked (a ``kind``: table, view...) when the server
    said which.
    """
    where = "%s %s" % (kind, table) if table else "one of its tables"
    return exceptions.RestoreError(
        "restoring %s from %s gave up after waiting %gs for a lock "
        "another session holds on %s; %s. Stop the Mistral services "
        "using the database, then run the same command again to finish "
        "the restore" % (database, path, waited, where, outcome),
        reason="lock-timeout", database=database, path=path,
        changed=changed, table=table, lock_wait=waited)


_CHUNK = 1 << 20


def widen(fd: int) -> None:
    """Grow a pipe from 64 KiB to 1 MiB: fewer wake-ups per gigabyte."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setsize, _CHUNK)


def pump(source: int, sink: int) -> None:
    """Move everything from fd ``source`` to fd ``sink`` until EOF
    (zero-copy on Linux; one end must be a pipe there)."""
    while True:
        if hasattr(os, "splice"):
            moved = os.splice(source, sink, _CHUNK)
        else:  # pragma: no cover - not Linux
            chunk = os.read(source, _CHUNK)
            write_all(sink, chunk)
            moved = len(chunk)
        if not moved:
            return


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def watch(progress: Progress | None, position: Callable[[], int],
          total: int | None, interval: float = 0.5) -> Iterator[None]:
    """Call ``progress(done, total)`` every ``interval`` seconds while
    the body runs (the caller reports the end)."""
    if progress is None:
        yield
        return
    done = threading.Event()

    def report() -> None:
        while not done.wait(interval):
            with contextlib.suppress(OSError):
                progress(position(), total)

    thread = threading.Thread(target=report, name="backup-progress",
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
