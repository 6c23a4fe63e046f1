"""Why populate refused to run.

Every refusal happens before the first write, so the database is left
exactly as it was. Each error names the file (or plugin) and the problem
as attributes for callers that want more than the message.
"""
from __future__ import annotations

from mistral_db_flows.exceptions import _base


class PopulateError(_base.MistralDbError):
    """A definition source cannot be used; nothing was written.

    ``path`` is the offending file (None when no file is involved) and
    ``problem`` says what is wrong with it, in words an operator can act
    on.
    """

    # Distinct from the generic 1 so deployment tools can tell "your
    # definitions are broken" from "the database is unwell".
    exit_code = _base.ExitCode.POPULATE_DEFINITIONS
    path: str | None
    problem: str

    def __init__(self, path: str | None, problem: str) -> None:
        self.path = path
        self.problem = problem
        where = "%s: " % path if path else ""
        super().__init__("populate: %s%s; nothing was written"
                         % (where, problem))


class DefinitionError(PopulateError):
    """A file is unreadable, not YAML, or not a valid definition."""


class DuplicateDefinition(PopulateError):
    """Two sources define the same action or workflow name."""

    kind: str
    name: str
    first: str
    second: str

    def __init__(self, kind: str, name: str, first: str,
                 second: str) -> None:
        self.kind = kind
        self.name = name
        self.first = first
        self.second = second
        super().__init__(second, "%s %r is already defined in %s"
                         % (kind, name, first))


class SourceError(PopulateError):
    """A definition plugin failed to load or returned something unusable.

    A plugin is never skipped silently: a missing plugin would make its
    workflows look deleted and populate would remove them.
    """

    namespace: str
    entry_point: str

    def __init__(self, namespace: str, entry_point: str,
                 problem: str) -> None:
        self.namespace = namespace
        self.entry_point = entry_point
        super().__init__(None, "plugin %r in %s: %s"
                         % (entry_point, namespace, problem))


class SchemaNotReady(PopulateError):
    """The definition tables are missing or lack head columns."""

    def __init__(self, problem: str) -> None:
        super().__init__(None, "%s (run `mistral-db-manage upgrade head` "
                         "first)" % problem)
