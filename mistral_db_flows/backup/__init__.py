"""Backups taken before a change, restored when the change fails.

One small interface over three backends, picked by the URL's dialect:

* ``check_can_backup(url, directory)``: raise before any change when a
  backup cannot be made (tool missing, directory not writable, clearly
  not enough space);
* ``take(url, directory, label=...)``: a consistent snapshot of schema
  and data into a 0600 file; returns a JSON-serialisable description;
* ``restore(url, backup)``: make the database exactly the backup again,
  dropping whatever was created since (waiting at most ``lock_wait``
  seconds for a lock another session holds);
* ``prune(directory, keep)``: keep the newest ``keep`` backups of each
  database and kind; ``listing(directory)``: what is there
  (:mod:`catalog`, which also writes and checks the ``.sha256`` file
  beside each backup).

Backup file names carry the database name and a hash of its identity
(``mistral_db_flows.identity``: asked of the server, so every URL of one
database names its backups alike), never a user or password.
"""
from __future__ import annotations

import datetime
import errno
import importlib
import os
import shutil
import time
from typing import Any, NoReturn

from mistral_db_flows import exceptions
from mistral_db_flows import urls
from mistral_db_flows.backup import catalog
from mistral_db_flows.backup import common

# The directory's side (checksums, listing, retention) lives in catalog.
prune = catalog.prune
listing = catalog.listing


def _backend(url: str) -> tuple[Any, str, Any]:
    u = common.parse(url)
    kind = common.backend(u)
    return u, kind, importlib.import_module(
        "mistral_db_flows.backup.%s" % kind)


def check_can_backup(url: str, directory: str) -> None:
    """Raise ``BackupError`` now if ``take`` could not succeed.

    Checks the tools (dump and restore, since a backup that cannot be
    restored is no backup), the directory, and free space against a
    lower-bound estimate of the backup's size.
    """
    u, _, module = _backend(url)
    database = common.database_name(u)
    path = common.prepare_directory(directory, database=database)
    needed = module.check(u, path)
    free = shutil.disk_usage(path).free
    if needed > free:
        raise exceptions.BackupError(
            "not enough free space in %s for a backup of %s: about %s "
            "needed, %s free; free some space or set another backup "
            "directory" % (path, database, catalog.human_size(needed),
                           catalog.human_size(free)),
            reason="no-space", database=database, path=path,
            needed=needed, free=free)


def take(url: str, directory: str, *, label: str,
         progress: common.Progress | None = None,
         identity: str | None = None) -> dict[str, Any]:
    """Back the database up into ``directory``; describe the backup.

    ``label`` (e.g. ``upgrade``) becomes part of the file name.
    ``progress(done_bytes, total_bytes_or_None)`` is called every half
    second while the backup runs. ``identity`` is the database's (a run
    knows it from its lock); without it the server is asked.
    """
    u, kind, module = _backend(url)
    database = common.database_name(u)
    path = common.prepare_directory(directory, database=database)
    if identity is None:
        identity = _identity_of(url)
    created = datetime.datetime.now(datetime.timezone.utc)
    final = os.path.join(path, common.file_name(u, label, created,
                                                identity=identity))
    started = time.monotonic()
    try:
        with common.new_file(final) as (fd, partial):
            with common.watch(progress, lambda: os.fstat(fd).st_size, None):
                module.dump(u, fd, partial)
    except OSError as exc:
        # The estimate checked beforehand is a lower bound: the disk may
        # still fill up while the dump is written.
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise exceptions.BackupError(
            "cannot write the backup %s: %s%s" % (
                final, exc.strerror or exc,
                "; free some space or set another backup directory"
                if full else ""),
            reason="no-space" if full else "write-failed",
            database=database, path=final) from None
    try:
        digest = catalog.write_checksum(final)
    except OSError as exc:
        raise exceptions.BackupError(
            "cannot write the checksum of the backup %s: %s"
            % (final, exc.strerror or exc), reason="write-failed",
            database=database, path=final) from None
    seconds = round(time.monotonic() - started, 3)
    size = os.path.getsize(final)
    if progress is not None:
        progress(size, size)
    return {
        "backend": kind,
        "path": final,
        "created": created.isoformat(),
        "size": size,
        "database": database,
        "label": label,
        # Checked before a restore drops anything (also beside the file).
        "sha256": digest,
        # How long taking it took (with a head start, the step itself
        # may only have waited for the end of it).
        "seconds": seconds,
    }


def restore(url: str, backup: dict[str, Any], *,
            progress: common.Progress | None = None,
            lock_wait: float = common.DEFAULT_LOCK_WAIT) -> None:
    """Make the database exactly what ``backup`` holds.

    Objects created after the backup (tables, columns, views...) are
    gone afterwards. Everything that can be checked without touching the
    database is checked first; a ``RestoreError`` with ``changed=False``
    means the database was left alone.

    On PostgreSQL and MariaDB/MySQL no lock another session holds (an
    open transaction that read a table, e.g. of a Mistral service still
    running) is waited for longer than ``lock_wait`` seconds: the
    restore then raises ``RestoreError`` with reason ``lock-timeout``
    (PostgreSQL rolls everything back; MariaDB may be part-restored,
    see ``changed``).
    """
    u, kind, module = _backend(url)
    database = common.database_name(u)
    path = str(backup.get("path", ""))
    _check_matches(backup, kind, database, path)
    catalog.verify(path, backup.get("sha256"), database=database)
    module.check_restore(u, path)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        with common.watch(progress,
                          lambda: os.lseek(fd, 0, os.SEEK_CUR), size):
            module.restore(u, path, fd, lock_wait=lock_wait)
    finally:
        os.close(fd)
    if progress is not None:
        progress(size, size)


def _identity_of(url: str) -> str:
    from mistral_db_flows import exceptions
    from mistral_db_flows import identity

    try:
        return identity.of_url(url)
    except exceptions.MistralDbError as exc:
        raise exceptions.BackupError(
            "cannot ask the server which database %s is: %s"
            % (urls.masked(url), getattr(exc, "reason", exc)),
            reason="unreachable") from None


def _check_matches(backup: dict[str, Any], kind: str, database: str,
                   path: str) -> None:
    def refuse(why: str, reason: str) -> NoReturn:
        raise exceptions.RestoreError(
            "refusing to restore %s into %s: %s" % (path or "a backup",
                                                     database, why),
            reason=reason, database=database, path=path)

    if backup.get("backend") != kind:
        refuse("it is a %s backup" % backup.get("backend"), "mismatch")
    if backup.get("database") != database:
        refuse("it is a backup of %s" % backup.get("database"), "mismatch")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        refuse("cannot read it (%s)" % exc.strerror, "unusable-backup")
    if "size" in backup and size != backup["size"]:
        refuse("its size is %d bytes, the backup made %d"
               % (size, backup["size"]), "unusable-backup")
