"""What a populate run did, per kind of definition."""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Kept:
    """A row populate would have changed but left alone, and why."""

    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


@dataclasses.dataclass
class Changes:
    """Names of the definitions of one kind, by what happened to them."""

    added: list[str] = dataclasses.field(default_factory=list)
    updated: list[str] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    kept: list[Kept] = dataclasses.field(default_factory=list)
    # System rows no source loaded here defines: removed with
    # remove_missing (unless referenced), else kept.
    missing: list[str] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"added": list(self.added), "updated": list(self.updated),
                "removed": list(self.removed),
                "unchanged": list(self.unchanged),
                "kept": [k.to_dict() for k in self.kept],
                "missing": list(self.missing)}


@dataclasses.dataclass
class PopulateReport:
    """``actions`` and ``workflows`` changes; ``sources`` read, in order.

    ``warnings`` repeats every kept row as one sentence for text output.
    """

    actions: Changes = dataclasses.field(default_factory=Changes)
    workflows: Changes = dataclasses.field(default_factory=Changes)
    sources: list[dict[str, str]] = dataclasses.field(
        default_factory=list)
    # Every plugin asked for definitions (``namespace:name``), also one
    # that gave none: what this environment could see.
    plugins: list[str] = dataclasses.field(default_factory=list)
    # Per kind, what undoing the writes needs (populate.undo): rows as
    # they were before; not part of to_dict(), the report people read.
    journal: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.actions.changed or self.workflows.changed

    @property
    def origins(self) -> list[str]:
        """Where definitions were looked for, each once, in order: who
        contributed the sources read (``package``, ``caller``) and every
        plugin asked (``mistral.preinstalled_workflows:<entry point>``),
        files or none."""
        seen: list[str] = []
        for origin in [s["origin"] for s in self.sources] + self.plugins:
            if origin not in seen:
                seen.append(origin)
        return seen

    @property
    def warnings(self) -> list[str]:
        return ["%s %s: %s" % (kind, k.name, k.reason)
                for kind, changes in (("action", self.actions),
                                      ("workflow", self.workflows))
                for k in changes.kept]

    def summary(self) -> str:
        """One line per kind, e.g. ``actions: 1 added, 0 updated, ...``."""
        lines = []
        for kind, c in (("actions", self.actions),
                        ("workflows", self.workflows)):
            lines.append("%s: %d added, %d updated, %d removed, "
                         "%d unchanged, %d kept"
                         % (kind, len(c.added), len(c.updated),
                            len(c.removed), len(c.unchanged), len(c.kept)))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"changed": self.changed,
                "actions": self.actions.to_dict(),
                "workflows": self.workflows.to_dict(),
                "warnings": self.warnings,
                "sources": list(self.sources),
                "origins": self.origins}
