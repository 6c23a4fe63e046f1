"""PostgreSQL: a session advisory lock on the lock's own session."""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import socket
from typing import Any

from mistral_db_flows import sessions
from mistral_db_flows.locking import server

_PG_APP_MAX = 63
_PG_MAX_MS = 2 ** 31 - 1


def _owner_tag(owner: str) -> str:
    return "%s (pid %d on %s)" % (owner, os.getpid(), socket.gethostname())


class PostgresLock(server.ServerLock):
    backend = "postgresql"

    key = key_high = key_low = 0

    def named(self, identity: str) -> None:
        super().named(identity)
        # Advisory locks are per database already; the name keeps ours
        # apart from other applications' keys.
        digest = hashlib.sha256(self.name.encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        self.key_high = (self.key >> 32) & 0xFFFFFFFF
        self.key_low = self.key & 0xFFFFFFFF

    def _take(self, timeout: float, on_wait: Any = None) -> None:
        self._query("SELECT set_config('application_name', %s, false), "
                    "set_config('statement_timeout', '0', false)",
                    (_owner_tag(self.owner)[:_PG_APP_MAX],))
        # The session must outlive a long run (the setting exists
        # from PostgreSQL 14 on).
        with contextlib.suppress(*self._errors):
            self._query(
                "SELECT set_config('idle_session_timeout', '0', false)")
        if not self._waiting(self._try_for, timeout, on_wait):
            raise self._timeout(timeout, self._holder())

    def _try_for(self, seconds: float) -> bool:
        if seconds <= 0:
            return bool(self._value("SELECT pg_try_advisory_lock(%s)",
                                    (self.key,)))
        return self._wait(seconds)

    def _wait(self, timeout: float) -> bool:
        """Queue on the lock server-side: taken the moment it is free."""
        # lock_timeout is an int of milliseconds; 0 means for ever.
        limit = "0" if timeout * 1000 >= _PG_MAX_MS else "%dms" % max(
            1, math.ceil(timeout * 1000))
        self._query("SELECT set_config('lock_timeout', %s, false)", (limit,))
        try:
            self._query("SELECT pg_advisory_lock(%s)", (self.key,))
        except self._errors as exc:
            code = getattr(exc, "pgcode", None) or getattr(
                exc, "sqlstate", None)
            if code != "55P03":  # lock_not_available
                raise
            return False
        self._query("SELECT set_config('lock_timeout', '0', false)")
        return True

    def _holder(self) -> dict[str, Any] | None:
        found = sessions.find(self._rows, "postgresql", "run_lock",
                              (self.key_high, self.key_low),
                              skip_ours=False)
        return found[0] if found else None

    def _unlock(self) -> None:
        self._query("SELECT pg_advisory_unlock(%s)", (self.key,))

    def _still_held(self) -> tuple[str, tuple]:
        return ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND granted "
                "AND classid::bigint = %s AND objid::bigint = %s "
                "AND objsubid = 1", (self.key_high, self.key_low))
