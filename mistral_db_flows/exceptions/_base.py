"""The exit codes and the base class of every error."""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What ``mistral-db-manage`` exits with (README's table)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    UNREACHABLE = 3
    UNKNOWN_REVISION = 4
    BRANCHES = 5
    SCHEMA_CONFLICT = 6
    STEP_FAILED = 7
    BACKUP_FAILED = 8
    RESTORE_FAILED = 9
    UPGRADE_NEEDED = 10
    LOCKED = 11
    RESUME_REFUSED = 12
    POPULATE_DEFINITIONS = 13
    CONNECTED = 14
    REVERT_DATA_MISSING = 15
    INTERRUPTED = 130
    BROKEN_PIPE = 141
    TERMINATED = 143


class MistralDbError(Exception):
    """Base class: a failure the operator can understand and act on."""

    exit_code: ExitCode = ExitCode.ERROR
    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
