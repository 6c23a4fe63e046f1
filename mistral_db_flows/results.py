"""What the API functions return: plain data, JSON-ready with to_dict().

No result holds a database URL: results are printed and, for flows,
persisted, and a URL may carry a password.
"""
from __future__ import annotations

import dataclasses
from typing import Any

# Run.state for a successful run, per operation.
DONE_STATE = {
    "upgrade": "upgraded",
    "stamp": "stamped",
    "populate": "populated",
    "populate_actions": "populated",
    "verify": "verified",
}
UNCHANGED = "unchanged"
REVERTED = "reverted"            # a step failed; the backup was restored
STOPPED = "stopped"              # a step failed; left as is to resume
REVERT_FAILED = "revert_failed"  # a step failed and so did the restore
OFFLINE = "offline"
FAILED = "failed"


class _Result:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclasses.dataclass
class Step(_Result):
    """One task of a flow: ``state`` is done, failed, reverted, pending.

    ``detail`` is what the task returned (JSON-ready), e.g.
    ``{"revision": "031", "applied": true}``.
    """

    name: str
    state: str
    duration: float | None = None
    detail: Any = None


@dataclasses.dataclass
class Run(_Result):
    """The outcome of one operation (a flow run, or an offline script)."""

    operation: str
    state: str
    start_revision: str | None = None
    end_revision: str | None = None
    steps: list[Step] = dataclasses.field(default_factory=list)
    backup: str | None = None
    target: str | None = None
    resumed: bool = False


@dataclasses.dataclass
class Current(_Result):
    """What ``alembic_version`` says; empty ``revisions`` when unversioned."""

    revisions: list[str]
    head: str
    at_head: bool

    def lines(self) -> list[str]:
        """Upstream's text: one line per revision, e.g. ``045 (head)``."""
        return ["%s (head)" % r if r == self.head else r
                for r in self.revisions]


@dataclasses.dataclass
class RevisionInfo(_Result):
    """One revision of the history.

    ``doc`` is the docstring's first paragraph as upstream prints it (it
    may span lines); ``children`` the revisions built on this one.
    """

    id: str
    down_revision: str | list[str] | None
    is_head: bool
    doc: str
    children: list[str] = dataclasses.field(default_factory=list)

    @property
    def is_branch_point(self) -> bool:
        return len(self.children) > 1

    def line(self) -> str:
        """Upstream's history line: ``044 -> 045 (head), <doc>``."""
        if self.down_revision is None:
            down = "<base>"
        elif isinstance(self.down_revision, list):
            down = "(%s)" % ", ".join(self.down_revision)
        else:
            down = self.down_revision
        return "%s -> %s%s%s, %s" % (
            down, self.id, " (head)" if self.is_head else "",
            " (branchpoint)" if self.is_branch_point else "", self.doc)


@dataclasses.dataclass
class Check(_Result):
    """check_migration: the graph is one unbroken chain to one head."""

    head: str
    base: str
    revisions: int
    sound: bool = True


@dataclasses.dataclass
class Status(_Result):
    """Where the database stands; ``interrupted`` comes with resume.

    ``current`` is the stamped revision (None for an empty database).
    """

    current: str | None
    head: str
    pending: list[str]
    interrupted: Any = None

    @property
    def at_head(self) -> bool:
        return not self.pending and self.current == self.head

    @property
    def upgrade_needed(self) -> bool:
        return bool(self.pending)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["at_head"] = self.at_head
        out["upgrade_needed"] = self.upgrade_needed
        return out


@dataclasses.dataclass
class NewRevision(_Result):
    """``revision``: the file written."""

    path: str
    revision: str
    down_revision: str | None
    message: str
