"""Decide what to write, from the wanted definitions and existing rows.

Pure: rows are plain dicts as read by ``store``. Rows are matched by
Mistral's unique key (name, namespace, project_id); a NULL namespace,
left by releases whose namespace migration missed it, counts as ''.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from mistral_db_flows.populate import report
from mistral_db_flows.populate import spec

USER_WORKFLOW = ("a workflow with this name created by a user exists in "
                 "project %s; the system workflow is not installed"
                 % spec.PROJECT_ID)
REFERENCED = ("gone from every source but still referenced by %s; "
              "kept (delete the references, then run populate again)")
# Mistral's own environment may load sources this one cannot (e.g.
# mistral-extra installed there only): never delete on that guess.
MISSING = ("no definition source loaded here defines it (it may come from "
           "a plugin installed only in Mistral's own environment); kept "
           "(populate --remove-missing removes it)")


@dataclasses.dataclass
class Plan:
    """Writes for one table; ``changes`` is what they amount to.

    ``gone`` are managed rows no source defines any more: ``store``
    deletes them or, when something refers to them, keeps them
    (``keep``).
    """

    kind: str
    add: list[spec.Definition] = dataclasses.field(default_factory=list)
    update: list[tuple[str, spec.Definition]] = dataclasses.field(
        default_factory=list)
    gone: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    changes: report.Changes = dataclasses.field(
        default_factory=report.Changes)

    def keep(self, referenced: dict[str, list[str]], *,
             remove_missing: bool = False) -> list[str]:
        """Settle ``gone``: ids to delete; the rest reported as kept.

        ``referenced`` maps a row id to what refers to it. Without
        ``remove_missing`` nothing is deleted: every gone row is kept
        and reported as missing.
        """
        delete = []
        for row in self.gone:
            self.changes.missing.append(row["name"])
            users = referenced.get(row["id"])
            if not remove_missing:
                self.changes.kept.append(report.Kept(row["name"], MISSING))
            elif users:
                self.changes.kept.append(report.Kept(
                    row["name"], REFERENCED % ", ".join(sorted(users))))
            else:
                delete.append(row["id"])
                self.changes.removed.append(row["name"])
        self.gone = []
        return delete


def make(kind: str, wanted: Iterable[spec.Definition],
         rows: Iterable[dict[str, Any]]) -> Plan:
    """Compare; workflows rows not wanted but is_system become ``gone``.

    Actions are never removed: Mistral stores its standard actions with
    is_system false, so a row no source defines any more cannot be told
    apart from one a user created.
    """
    plan = Plan(kind)
    rows = list(rows)
    by_key: dict[tuple[str, str, Any], dict[str, Any]] = {}
    for row in rows:
        key = _key(row)
        # Prefer the row already in the '' namespace over a NULL one.
        if key not in by_key or row["namespace"] == spec.NAMESPACE:
            by_key[key] = row
    matched = set()
    for definition in wanted:
        found = by_key.get(_key(definition.columns))
        if found is None:
            plan.add.append(definition)
            plan.changes.added.append(definition.name)
            continue
        matched.add(found["id"])
        if kind == spec.WORKFLOW and not found["is_system"]:
            plan.changes.kept.append(report.Kept(definition.name,
                                                 USER_WORKFLOW))
        elif differs(found, definition.columns):
            plan.update.append((found["id"], definition))
            plan.changes.updated.append(definition.name)
        else:
            plan.changes.unchanged.append(definition.name)
    if kind == spec.WORKFLOW:
        plan.gone = sorted(
            (row for row in rows
             if row["is_system"] and row["id"] not in matched),
            key=lambda row: (row["name"], row["id"]))
    return plan


def differs(row: dict[str, Any], columns: dict[str, Any]) -> bool:
    for column, value in columns.items():
        current = row[column]
        if isinstance(value, bool):
            # MySQL hands booleans back as 0/1.
            current = None if current is None else bool(current)
        if current != value:
            return True
    return False


def _key(row: dict[str, Any]) -> tuple[str, str, Any]:
    return (row["name"], row["namespace"] or spec.NAMESPACE,
            row["project_id"])
