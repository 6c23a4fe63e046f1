"""SQLite: ``flock`` on ``<database file>.lock``."""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import time
from typing import Any

from mistral_db_flows import exceptions
from mistral_db_flows import sessions
from mistral_db_flows.locking import base

_POLL = 0.05


class FileLock(base.Lock):
    backend = "sqlite"

    def __init__(self, url: str, database: str | None, owner: str) -> None:
        super().__init__(url, database, owner)
        from mistral_db_flows import identity
        from mistral_db_flows import urls

        parsed = urls.parse(url)
        path = parsed.sqlite_path
        if path is None:
            raise exceptions.LockError(
                "cannot lock an in-memory SQLite database: give a file "
                "path", database=database or "")
        self.named(identity.of_sqlite(parsed))
        self.database = os.path.realpath(path)
        self.path = self.database + ".lock"
        self.name = self.path
        self.fd: int | None = None

    def named(self, identity: str) -> None:
        # The file's real path is all of a SQLite database's identity.
        self.identity = identity

    def acquire(self, timeout: float,
                on_wait: base.OnWait | None = None) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise exceptions.LockError(
                "cannot create the lock file %s: %s"
                % (self.path, exc.strerror),
                database=self.database) from None
        if not self._waiting(lambda seconds: _flock_within(fd, seconds),
                             timeout, on_wait):
            os.close(fd)
            raise self._timeout(timeout, self._holder())
        self.fd = fd
        record = json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "owner": self.owner,
            "since": datetime.datetime.now(
                datetime.timezone.utc).isoformat(timespec="seconds")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)

    def _holder(self) -> dict[str, Any] | None:
        # What the holder wrote into the lock file when it took it.
        try:
            with open(self.path, encoding="utf-8") as lock_file:
                data = json.loads(lock_file.read() or "null")
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or "pid" not in data:
            return None
        # The one shape every holder has (sessions.describe): the file
        # names the process and its host, and the run's owner.
        try:
            return sessions.describe(data["pid"], data.get("owner"),
                                     data.get("host"), None,
                                     data.get("since"))
        except (TypeError, ValueError):  # not a record of ours
            return None

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def _flock_within(fd: int, seconds: float) -> bool:
    """Whether the lock on ``fd`` was taken within ``seconds``."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)
