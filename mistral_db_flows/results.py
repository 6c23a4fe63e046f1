"""What the API functions return: plain data, JSON-ready with to_dict().

No result holds a database URL: results are printed and, for flows,
persisted, and a URL may carry a password.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from mistral_db_flows import exceptions
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
    DOWNGRADED = "downgraded"
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
    "downgrade": Outcome.DOWNGRADED,
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

    def lines(self) -> list[str]:
        """What the run did: populate's report by kind and name, then
        one summary line (what happened, from where to where)."""
        return self._report_lines() + [self._summary()]

    def _summary(self) -> str:
        text = "%s: %s" % (self.operation, self.state)
        start, end = self.start_revision, self.end_revision
        if start != end:
            text += " %s -> %s" % (start or "<base>", end or "<base>")
        elif end:
            text += " at %s" % end
        if self.steps:
            seconds = sum(step.duration or 0 for step in self.steps)
            text += ", %d step%s in %.1f s" % (
                len(self.steps), "" if len(self.steps) == 1 else "s",
                seconds)
        if self.backup:
            text += ", backup: %s" % self.backup
        return text

    def _report_lines(self) -> list[str]:
        lines = []
        for step in self.steps:
            report = step.detail
            if step.name not in ("populate", "populate_actions") \
                    or not isinstance(report, dict):
                continue
            # Which plugins were read: what this environment could see.
            origins = report.get("origins") or []
            if origins:
                lines.append("definitions read from: %s"
                             % ", ".join(origins))
            for kind in ("actions", "workflows"):
                changes = report.get(kind) or {}
                for what in ("added", "updated", "removed", "unchanged"):
                    names = changes.get(what) or []
                    if names:
                        lines.append("%s %s: %s" % (kind, what,
                                                    ", ".join(names)))
                missing = changes.get("missing") or []
                if missing:
                    lines.append("%s no source here defines: %s"
                                 % (kind, ", ".join(missing)))
            # Rows kept although no source defines them are warnings.
            lines += ["warning: %s" % w
                      for w in report.get("warnings") or []]
        return lines


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

    def verbose_lines(self, database: str,
                      history: list[RevisionInfo]) -> list[str]:
        """``current --verbose``: each revision with its parent and
        description; ``database`` is the URL already masked."""
        lines = ["Current revision(s) for %s:" % database]
        if not self.revisions:
            lines.append("(none: the database has no version recorded)")
        infos = {info.id: info for info in history}
        for rev in self.revisions:
            info = infos.get(rev)
            lines.append("Rev: %s%s" % (rev, " (head)" if rev == self.head
                                        else ""))
            if info is not None:
                lines.append("Parent: %s" % (info.down_revision
                                             or "<base>"))
                lines.append("")
                lines += ["    " + doc_line.strip()
                          for doc_line in (info.doc or "").splitlines()]
        return lines


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

    def lines(self, children: bool = False) -> list[str]:
        """The history line; with ``children`` (``branches``), one
        more line per revision built on this one."""
        return [self.line()] + (["%s -> %s" % (" " * len(self.id), child)
                                 for child in self.children]
                                if children else [])


@dataclasses.dataclass
class Check(_Result):
    """check_migration: the graph is one unbroken chain to one head."""

    head: str
    base: str
    revisions: int
    # Always true when returned (a broken graph raises BranchError), but
    # part of the documented JSON document (docs/cli.md): kept.
    sound: bool = True

    def lines(self) -> list[str]:
        return ["OK: %d revisions in one unbroken chain from %s to the "
                "single head %s" % (self.revisions, self.base, self.head)]


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
    # The database looked at: its URL with the password hidden.
    database: str | None = None
    # A SQLite file that does not exist (nothing to read; an upgrade
    # would create it), as an absolute path.
    missing_file: str | None = None
    # Steps whose revert a run recorded but did not finish (newest
    # first): the next command that changes the database finishes it.
    revert_pending: list[str] = dataclasses.field(default_factory=list)
    # Revisions whose revert data a finished upgrade kept for
    # ``downgrade`` (newest first); not a revert to finish.
    revert_kept: list[str] = dataclasses.field(default_factory=list)

    @property
    def at_head(self) -> bool:
        return not self.pending and self.current == self.head

    @property
    def upgrade_needed(self) -> bool:
        """Revisions are pending, or an interrupted run (whatever its
        operation) waits for the command that resumes it."""
        return (bool(self.pending) or bool(self.interrupted)
                or bool(self.revert_pending))

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["at_head"] = self.at_head
        out["upgrade_needed"] = self.upgrade_needed
        return out

    def lines(self) -> list[str]:
        """``status``: current, head, pending, the run left, verdict."""
        current = self.current
        if isinstance(current, (list, tuple)):
            current = ", ".join(current)
        lines = ["database: %s" % self.database] if self.database else []
        if self.missing_file:
            return lines + [
                "no database at %s: `upgrade head` would create it there "
                "(is this the configuration you meant?)" % self.missing_file,
                "head: %s" % self.head]
        lines += ["current: %s" % (current or "(none)"),
                  "head: %s" % self.head,
                 "pending: %s" % (" ".join(self.pending) or "(none)")]
        run = self.interrupted
        if run and run.get("in_progress"):
            holder = run.get("holder")
            lines.append(
                "run in progress: %s to %s, at step %s, by %s; wait for "
                "it to finish" % (
                    run["operation"], run["target"] or "base", run["step"],
                    exceptions.describe_session(holder) if holder
                    else "another process"))
        else:
            lines.append("interrupted run: %s" % (
                "%s to %s, stopped at step %s (%s); run the same command "
                "to resume, or `abandon`" % (run["operation"],
                                             run["target"] or "base",
                                             run["step"], run["state"])
                if run else "no"))
        if run and run.get("backup"):
            lines.append("its backup: %s" % run["backup"])
        if self.revert_pending:
            lines.append("revert pending: steps %s (the next command that "
                         "changes the database finishes it)"
                         % " ".join(self.revert_pending))
        if self.revert_kept:
            lines.append("revert data kept for %s (`downgrade` uses it, "
                         "`drop_revert_data` drops it)"
                         % _span(self.revert_kept))
        lines.append("upgrade needed" if self.upgrade_needed
                     else "up to date")
        return lines


def _span(revisions: list[str]) -> str:
    """``031..045`` for several revisions (those between that recorded
    nothing to undo have no entries of their own), else the one id."""
    ordered = sorted(revisions)
    if len(ordered) == 1:
        return ordered[0]
    return "%s..%s" % (ordered[0], ordered[-1])


@dataclasses.dataclass
class Backups(_Result):
    """``backups``: the backups in ``directory``, newest first.

    Each is a dict: ``database`` (as the file name has it), ``kind``
    (the operation that took it), ``backend``, ``size`` (bytes),
    ``created`` (UTC, ISO 8601), ``path`` and ``checksum`` (a
    ``.sha256`` file is beside it).
    """

    directory: str
    backups: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.backups:
            return ["no backups in %s" % self.directory]
        rows = [("DATABASE", "KIND", "SIZE", "CREATED (UTC)", "PATH")]
        from mistral_db_flows.backup import catalog

        rows += [(b["database"], b["kind"], catalog.human_size(b["size"]),
                  b["created"][:19].replace("T", " "), b["path"])
                 for b in self.backups]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return ["  ".join([cell.ljust(width) for cell, width
                           in zip(row[:4], widths)] + [row[4]])
                for row in rows]


@dataclasses.dataclass
class NewRevision(_Result):
    """``revision``: the file written."""

    path: str
    revision: str
    down_revision: str | None
    message: str
