"""Errors of backups and restores.

They live apart from ``exceptions`` so the backup package stays
self-contained; both subclass the one error family. Facts are keyword
attributes: ``reason`` is a short machine-readable word (``tool-missing``,
``no-space``, ``no-permission``, ``tool-failed``, ``mismatch``,
``unusable-backup``, ``unsupported``, ``lock-timeout``), ``database``
names the database without credentials, plus whatever else the raiser
knows (``tool``, ``path``, ``needed``, ``free``; for ``lock-timeout``
``table`` (None when the server did not say) and ``lock_wait``, the
seconds waited...). Messages never hold a password.
"""
from __future__ import annotations

from typing import Any

from mistral_db_flows import exceptions


class _Facts(exceptions.MistralDbError):
    def __init__(self, message: str, *, reason: str,
                 database: str | None = None, **facts: Any) -> None:
        self.reason = reason
        self.database = database
        self.facts = dict(facts)
        for key, value in facts.items():
            setattr(self, key, value)
        super().__init__(message)


class BackupError(_Facts):
    """A backup cannot be made; the database has not been changed."""

    exit_code = 8


class RestoreError(_Facts):
    """A backup could not be restored into the database.

    ``changed`` says whether the database may have been touched: False
    when the restore was refused before anything was dropped.
    """

    exit_code = 9

    def __init__(self, message: str, *, reason: str,
                 database: str | None = None, changed: bool = False,
                 **facts: Any) -> None:
        super().__init__(message, reason=reason, database=database,
                         changed=changed, **facts)
