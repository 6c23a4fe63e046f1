"""MariaDB/MySQL: ``GET_LOCK`` on the lock's own session."""
from __future__ import annotations

import hashlib
from typing import Any

from mistral_db_flows import exceptions
from mistral_db_flows import sessions
from mistral_db_flows.locking import base
from mistral_db_flows.locking import server

_MYSQL_NAME_MAX = 64
_MYSQL_MAX_WAIT_TIMEOUT = 31536000


class MysqlLock(server.ServerLock):
    backend = "mysql"

    def named(self, identity: str) -> None:
        super().named(identity)
        # GET_LOCK names are server-wide, hence the database in it; they
        # are limited to 64 characters, which an identity may pass.
        if len(self.name) > _MYSQL_NAME_MAX:
            self.name = "%s:%s" % (base.PREFIX, hashlib.sha256(
                identity.encode()).hexdigest()[:40])

    def _take(self, timeout: float, on_wait: Any = None) -> None:
        # The session must outlive a long run; the server would
        # otherwise drop it (and the lock) after wait_timeout.
        self._query("SET SESSION wait_timeout = %d"
                    % _MYSQL_MAX_WAIT_TIMEOUT, fetch=False)
        if not self._waiting(self._try_for, timeout, on_wait):
            raise self._timeout(timeout, self._holder())

    def _try_for(self, seconds: float) -> bool:
        got = self._value("SELECT GET_LOCK(%s, %s)",
                          (self.name, min(max(0.0, seconds),
                                          _MYSQL_MAX_WAIT_TIMEOUT)))
        if got is None:
            raise exceptions.LockError(
                "GET_LOCK failed on database %s" % self.database,
                database=self.database)
        return bool(got)

    def _holder(self) -> dict[str, Any] | None:
        found = sessions.find(self._rows, "mysql", "run_lock",
                              (self.name,), skip_ours=False)
        return found[0] if found else None

    def _unlock(self) -> None:
        self._query("SELECT RELEASE_LOCK(%s)", (self.name,))

    def _still_held(self) -> tuple[str, tuple]:
        return ("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (self.name,))
