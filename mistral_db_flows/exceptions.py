"""The one error family of mistral-db-flows.

Every error carries its facts as attributes; ``cli`` turns an error into
one line on stderr and the exit code named by ``exit_code``.
"""
from __future__ import annotations


class MistralDbError(Exception):
    """Base class: a failure the operator can understand and act on."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SchemaConflict(MistralDbError):
    """An object exists with the name a revision wants, in another shape.

    Re-running a half-applied revision skips objects that already have
    the intended shape; an object of another shape is never accepted
    silently.
    """

    def __init__(self, kind: str, name: str, table: str | None,
                 expected: str, found: str) -> None:
        self.kind = kind
        self.name = name
        self.table = table
        self.expected = expected
        self.found = found
        where = " on table %s" % table if table and table != name else ""
        super().__init__(
            "%s %s%s exists with another shape: found %s, expected %s; "
            "fix or drop it by hand, then run the upgrade again"
            % (kind, name, where, found, expected))
