"""The backup directory: checksums beside backups, listing, retention.

Every backup ``B`` gets ``B.sha256`` beside it, in ``sha256sum``'s
format (an operator checks a file by hand with ``sha256sum -c
B.sha256``). A restore compares the file with the checksum recorded
when it was taken before it drops anything: a backup changed since (a
same-size corruption passes a size check) is refused.

Nothing here connects to a database: ``backups`` lists the directory
even when the database is down.
"""
from __future__ import annotations

import datetime
import hashlib
import os
from typing import Any, Iterable

from mistral_db_flows import exceptions
from mistral_db_flows.backup import common

SUFFIX = ".sha256"
# Labels whose backups are counted apart from the others: a populate
# (or an embedder's run) never pushes out a pre-upgrade backup.
UPGRADE_KIND = "upgrade"


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_checksum(path: str) -> str:
    """Write ``path``.sha256 (0600, atomically); return the digest."""
    digest = sha256_of(path)
    with common.new_file(path + SUFFIX) as (fd, _):
        common.write_all(fd, ("%s  %s\n" % (
            digest, os.path.basename(path))).encode())
    return digest


def recorded_checksum(path: str) -> str | None:
    """The digest written beside ``path`` (None: no such file)."""
    try:
        with open(path + SUFFIX, encoding="ascii") as f:
            return f.read().split()[0]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        return ""  # unreadable or empty: matches no digest


def verify(path: str, expected: str | None, *, database: str) -> None:
    """Refuse (RestoreError, nothing changed) a backup whose content is
    not what was written: its digest differs from ``expected`` (the
    run's record) or from the file beside it. A backup with neither (a
    build before checksums) passes on its size check alone."""
    beside = recorded_checksum(path)
    wanted = [d for d in (expected, beside) if d is not None]
    if not wanted:
        return
    advice = ("the database was left as it is. Do not restore this file: "
              "restore another backup by hand (docs/safety.md) or "
              "`abandon` the run and check the database")
    try:
        actual = sha256_of(path)
    except OSError as exc:
        raise exceptions.RestoreError(
            "refusing to restore %s into %s: cannot read it (%s); %s"
            % (path, database, exc.strerror or exc, advice),
            reason="unusable-backup", database=database,
            path=path) from None
    if any(actual != digest for digest in wanted):
        raise exceptions.RestoreError(
            "refusing to restore %s into %s: its sha256 is %s, not the "
            "%s recorded when it was taken (the file changed since); %s"
            % (path, database, actual, wanted[0], advice),
            reason="checksum-mismatch", database=database, path=path)


def listing(directory: str) -> list[dict[str, Any]]:
    """The backups in ``directory``, newest first: database (as its file
    name has it), kind (the run that took it), size, created (UTC, ISO
    8601), path, and whether a checksum is beside it."""
    path = os.path.abspath(directory)
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        match = common.NAME_RE.match(name)
        if not match:
            continue
        full = os.path.join(path, name)
        try:
            size = os.path.getsize(full)
        except FileNotFoundError:  # pruned meanwhile
            continue
        created = datetime.datetime.strptime(
            match["stamp"], common.STAMP_FORMAT).replace(
                tzinfo=datetime.timezone.utc)
        found.append({"database": match["database"], "kind": match["label"],
                      "backend": _BACKENDS.get(match["ext"]),
                      "size": size, "created": created.isoformat(),
                      "path": full,
                      "checksum": os.path.exists(full + SUFFIX)})
    found.sort(key=lambda b: (b["created"], b["path"]), reverse=True)
    return found


_BACKENDS = {ext: kind for kind, ext in common.EXTENSIONS.items()}


def _retention_group(match: Any) -> tuple[str, bool]:
    return match["key"], match["label"] == UPGRADE_KIND


def prune(directory: str, keep: int, *,
          protect: Iterable[str] = ()) -> list[str]:
    """Delete all but the newest ``keep`` backups of each database and
    kind (pre-upgrade backups and the others are counted apart), with
    their checksum files.

    Only files named like our backups are considered; paths in
    ``protect`` (e.g. the backup an interrupted run still needs) are
    never deleted. Partial files left by a killed backup are removed
    once their process is gone. Returns the deleted backups' paths.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1, got %r" % (keep,))
    path = os.path.abspath(directory)
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    protected = {os.path.abspath(p) for p in protect}
    groups: dict[tuple[str, bool], list[tuple[str, str]]] = {}
    doomed = []
    for name in names:
        match = common.NAME_RE.match(name)
        if match:
            groups.setdefault(_retention_group(match), []).append(
                (match["stamp"], name))
            continue
        partial = common.PARTIAL_RE.match(name)
        final = partial["final"] if partial else ""
        if final.endswith(SUFFIX):
            final = final[:-len(SUFFIX)]
        if partial and common.NAME_RE.match(final) \
                and not _alive(int(partial["pid"])):
            doomed.append(name)
    for backups in groups.values():
        backups.sort(reverse=True)
        doomed.extend(name for _, name in backups[keep:])
    removed = []
    for name in sorted(doomed):
        full = os.path.join(path, name)
        if full in protected:
            continue
        try:
            os.unlink(full)
        except FileNotFoundError:
            continue
        if common.NAME_RE.match(name):
            try:
                os.unlink(full + SUFFIX)
            except FileNotFoundError:
                pass
        removed.append(full)
    return removed


def human_size(size: int) -> str:
    """``size`` bytes for people: ``12 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return "%.0f %s" % (value, unit)
        value /= 1024
    return "%.1f TiB" % value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
