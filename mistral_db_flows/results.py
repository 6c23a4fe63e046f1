"""What the API functions return: plain data, JSON-ready with to_dict().

No result holds a database URL: results are printed and, for flows,
persisted, and a URL may carry a password.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from mistral_db_flows import states


class Outcome(states.StrEnum):
    """How a run that did not fail ended: a Run's state then.

    Not a RunState: the logbook records each of these runs as
    ``finished`` (an offline run, or one that found the database at its
    target already, not at all), where a Run names what its operation
    did. A failed Run's state is the RunState the failure left:
    ``failed``, ``reverted``, ``stopped`` or ``revert_failed``.
    """

    UPGRADED = "upgraded"
    STAMPED = "stamped"
    POPULATED = "populated"
    VERIFIED = "verified"
    DONE = "done"            # an operation of an embedder's flow
    UNCHANGED = "unchanged"  # already at the target: nothing ran
    OFFLINE = "offline"      # the SQL script was written, nothing ran

    @classmethod
    def succeeded(cls, operation: str) -> "Outcome":
        """What a successful run of ``operation`` did."""
        return _SUCCEEDED.get(operation, cls.DONE)


_SUCCEEDED = {
    "upgrade": Outcome.UPGRADED,
    "stamp": Outcome.STAMPED,
    "populate": Outcome.POPULATED,
    "populate_actions": Outcome.POPULATED,
    "verify": Outcome.VERIFIED,
}


class _Result:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclasses.dataclass
class Step(_Result):
    """One task of a flow: ``state`` is a StepState (done, failed,
    reverted, pending...).

    ``detail`` is what the task returned (JSON-ready), e.g.
    ``{"revision": "031", "applied": true}``.
    """

    name: str
    state: states.StepState | str
    duration: float | None = None
    detail: Any = None


@dataclasses.dataclass
class Run(_Result):
    """The outcome of one operation (a flow run, or an offline script).

    ``state``: an Outcome, or for a failed run the RunState it left.
    """

    operation: str
    state: Outcome | states.RunState
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
    ``interrupted`` is the run that has not ended (``resume.describe``),
    if any: running the same command continues it.
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
        """Revisions are pending, or an interrupted run (whatever its
        operation) waits for the command that resumes it."""
        return bool(self.pending) or bool(self.interrupted)

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
