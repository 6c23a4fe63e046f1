"""What every backend's lock offers."""
from __future__ import annotations

import time
from typing import Any, Callable

from mistral_db_flows import exceptions

PREFIX = "mistral-db-flows"

# While waiting for another run, say so at once and this often.
REPORT_EVERY = 10.0

# Told what a wait is for: one line of text.
OnWait = Callable[[str], None]


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

    def acquire(self, timeout: float, on_wait: OnWait | None = None
                ) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for another
        run; ``on_wait`` hears, at once and every REPORT_EVERY seconds
        of the wait, who holds it."""
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise LockError if the lock was lost (e.g. connection cut)."""

    def _holder(self) -> dict[str, Any] | None:
        """What the backend tells of the run holding the lock."""
        return None

    def _waiting(self, try_for: Callable[[float], bool], timeout: float,
                 on_wait: OnWait | None) -> bool:
        """Whether ``try_for(seconds)`` (0: do not wait) got the lock
        within ``timeout``, telling ``on_wait`` while it waits."""
        if try_for(0):
            return True
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            remaining = timeout - waited
            if remaining <= 0:
                return False
            if on_wait is not None:
                holder = self._holder()
                on_wait("waiting for the lock of database %s, held by %s "
                        "(waited %d s of %g s)" % (
                            self.database,
                            exceptions.describe_session(holder) if holder
                            else "another run", waited, timeout))
            if try_for(min(remaining, REPORT_EVERY)):
                return True

    def _timeout(self, timeout: float,
                 holder: dict[str, Any] | None) -> exceptions.LockTimeout:
        return exceptions.LockTimeout(
            database=self.database, lock=self.name, timeout=timeout,
            owner=self.owner, holder=holder)
