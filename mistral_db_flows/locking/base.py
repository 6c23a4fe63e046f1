"""What every backend's lock offers."""
from __future__ import annotations

from typing import Any

from mistral_db_flows import exceptions

PREFIX = "mistral-db-flows"


class Lock:
    """What every backend offers; ``hold`` yields one of these."""

    backend = ""

    def __init__(self, url: str, database: str | None, owner: str) -> None:
        self.url = url
        self.owner = owner
        self.database = database or ""
        # Known once the server was asked (see identity), or given.
        self.identity: str | None = None
        self.name = ""

    def named(self, identity: str) -> None:
        """Name the lock after the database's ``identity``."""
        self.identity = identity
        self.name = "%s:%s" % (PREFIX, identity)

    def acquire(self, timeout: float) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise LockError if the lock was lost (e.g. connection cut)."""

    def _timeout(self, timeout: float,
                 holder: dict[str, Any] | None) -> exceptions.LockTimeout:
        return exceptions.LockTimeout(
            database=self.database, lock=self.name, timeout=timeout,
            owner=self.owner, holder=holder)
