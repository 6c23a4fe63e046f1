"""The revision graph and the plans made on it, without Alembic.

Pure logic, like Alembic's own ``script/revision.py``: the revision files
are parsed (never imported), and planning resolves a target (``head``,
``NNN``, ``+N``, a delta, ``start:end``) against the graph and the
database's current revision before anything is built, so a bad target
fails without touching the database. No database, no Alembic, no
TaskFlow: ``current`` and ``status`` stand on this module.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import os
import re
from typing import Any, Sequence

from mistral_db_flows import exceptions

MIGRATIONS_PACKAGE = "mistral_db_flows.migrations"


def script_location() -> str:
    """The folder holding env.py and versions/ (source tree or install)."""
    spec = importlib.util.find_spec(MIGRATIONS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the migrations package is not installed")
    return os.path.abspath(list(spec.submodule_search_locations)[0])


def versions_dir() -> str:
    return os.path.join(script_location(), "versions")


# -- revision files --------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RevisionFile:
    """What a revision file declares; ``doc`` as Alembic reports it."""

    id: str
    down_revisions: tuple[str, ...]
    doc: str
    path: str

    @property
    def down_revision(self) -> str | list[str] | None:
        if not self.down_revisions:
            return None
        if len(self.down_revisions) == 1:
            return self.down_revisions[0]
        return list(self.down_revisions)


# Alembic features the graph does not model: a file using one would be
# planned differently from how Alembic runs it, so it is refused.
_UNSUPPORTED = ("branch_labels", "depends_on")


def parse_revision_file(path: str) -> RevisionFile | None:
    """Read ``revision``, ``down_revision`` and the doc; None if absent.

    ``doc`` is what Alembic's ``Script.doc`` gives: the stripped module
    docstring up to its first blank line. The file is parsed, not run.
    A ``branch_labels`` or ``depends_on`` other than None (or empty)
    raises UnsupportedRevisionFile.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        if target.id in _UNSUPPORTED:
            _refuse_if_set(path, target.id, value)
        elif target.id in ("revision", "down_revision"):
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
    rev = found.get("revision")
    if not isinstance(rev, str):
        return None
    down = found.get("down_revision")
    if down is None:
        downs: tuple[str, ...] = ()
    elif isinstance(down, str):
        downs = (down,)
    else:
        downs = tuple(down)
    doc = (ast.get_docstring(tree, clean=False) or "").strip()
    return RevisionFile(rev, downs, re.split("\n\n", doc)[0], path)


def _refuse_if_set(path: str, name: str, value: ast.expr) -> None:
    try:
        declared = ast.literal_eval(value)
    except ValueError:  # computed: it may be anything, so refuse it
        declared = ast.unparse(value)
    if declared:
        raise exceptions.UnsupportedRevisionFile(path, name, repr(declared))


class Graph:
    """The revision graph: pure data, answers without touching a database.

    ``order`` lists ids oldest first (parents before children).
    """

    def __init__(self, files: list[RevisionFile]) -> None:
        self.revisions = {f.id: f for f in files}
        self.children: dict[str, list[str]] = {f.id: [] for f in files}
        self.missing: list[str] = []
        for f in files:
            for down in f.down_revisions:
                if down in self.children:
                    self.children[down].append(f.id)
                elif down not in self.missing:
                    self.missing.append(down)
        for kids in self.children.values():
            kids.sort()
        self.heads = sorted(r for r, kids in self.children.items()
                            if not kids)
        self.bases = sorted(f.id for f in files if not f.down_revisions)
        self.branch_points = sorted(r for r, kids in self.children.items()
                                    if len(kids) > 1)
        self.order = self._topological()

    def _topological(self) -> list[str]:
        done: list[str] = []
        seen: set[str] = set()
        for rev in sorted(self.revisions):
            stack = [rev]
            while stack:
                top = stack[-1]
                if top in seen:
                    stack.pop()
                    continue
                todo = [d for d in self.revisions[top].down_revisions
                        if d in self.revisions and d not in seen]
                if todo:
                    stack.extend(todo)
                    continue
                seen.add(top)
                done.append(top)
                stack.pop()
        return done

    def __contains__(self, rev: object) -> bool:
        return rev in self.revisions

    @property
    def sound(self) -> bool:
        """One base, one head, no branch, no dangling down_revision."""
        return (len(self.heads) == 1 and len(self.bases) == 1
                and not self.branch_points and not self.missing)

    def ancestors(self, rev: str | None) -> set[str]:
        """``rev`` and every revision below it (empty for None)."""
        out: set[str] = set()
        stack = [rev] if rev else []
        while stack:
            r = stack.pop()
            if r in out or r not in self.revisions:
                continue
            out.add(r)
            stack.extend(self.revisions[r].down_revisions)
        return out

    def between(self, start: str | None, end: str) -> list[str]:
        """Revisions to apply, oldest first, to go from start to end."""
        have = self.ancestors(start)
        want = self.ancestors(end)
        return [r for r in self.order if r in want and r not in have]


@functools.lru_cache(maxsize=8)
def _graph_for(location: str, stamp: tuple) -> Graph:
    folder = os.path.join(location, "versions")
    files = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py") and not name.startswith(("__init__", ".")):
            parsed = parse_revision_file(os.path.join(folder, name))
            if parsed is not None:
                files.append(parsed)
    return Graph(files)


def graph(location: str | None = None) -> Graph:
    """The revision graph of the migrations folder, cached per listing."""
    location = location or script_location()
    folder = os.path.join(location, "versions")
    listing = os.stat(folder)
    return _graph_for(location, (listing.st_mtime_ns, listing.st_size))


def clear_cache() -> None:
    """Forget parsed graphs (a file rewritten in place keeps its
    folder's listing, which is all the cache looks at)."""
    _graph_for.cache_clear()


# -- plans -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Plan:
    """Where a run starts, where it ends, and the revisions in between."""

    start: str | None
    target: str | None
    pending: tuple[str, ...] = ()

    @property
    def unchanged(self) -> bool:
        return not self.pending and self.start == self.target


def single_head(graph: Graph) -> str:
    """The one head of a sound graph; BranchError otherwise."""
    if not graph.sound:
        raise exceptions.BranchError(graph.branch_points, graph.heads,
                                     graph.missing)
    return graph.heads[0]


def one_revision(current: Sequence[str], graph: Graph) -> str | None:
    """The database's single revision; unknown ones are an error."""
    for rev in current:
        if rev not in graph:
            raise exceptions.UnknownRevision(rev, where="database")
    if len(current) > 1:
        raise exceptions.MistralDbError(
            "the database is stamped with several revisions (%s); stamp "
            "the right one with `stamp <revision>`" % ", ".join(current))
    return current[0] if current else None


_RELATIVE = re.compile(r"^\+(\d+)$")
_MISSING = ("You must provide a revision or relative delta: head, a "
            "revision id, +N or --delta N")


def _steps(delta: Any, shown: str) -> int:
    """A positive number of steps; ``shown`` names it in messages."""
    if isinstance(delta, bool) or not isinstance(delta, int):
        try:
            delta = int(str(delta).strip())
        except ValueError:
            raise exceptions.BadTarget(
                delta, "%s is not a number of steps" % shown) from None
    if delta <= 0:
        raise exceptions.BadTarget(
            delta, "%s: the number of steps must be 1 or more "
            "(to go down, use `downgrade`)" % shown)
    return delta


def _named(graph: Graph, text: str, head: str) -> str | None:
    """``head``, ``base`` (None) or a known id; UnknownRevision else."""
    if text in ("head", "heads"):
        return head
    if text == "base":
        return None
    if text in graph:
        return text
    raise exceptions.UnknownRevision(text)


def plan_upgrade(graph: Graph, current: Sequence[str],
                 target: str | None = None,
                 delta: int | None = None) -> Plan:
    """Resolve an online upgrade target against the current revision."""
    if target is not None and not str(target).strip():
        target = None
    if target is None and delta is None:
        raise exceptions.BadTarget(None, _MISSING)
    if target is not None and delta is not None:
        raise exceptions.BadTarget(
            target, "give either a target or --delta, not both")
    steps = None
    end: str | None
    if delta is not None:
        steps = _steps(delta, "--delta %s" % (delta,))
    else:
        target = str(target).strip()
        m = _RELATIVE.match(target)
        if m:
            steps = _steps(int(m.group(1)), target)
        elif target.startswith("-"):
            raise exceptions.BadTarget(
                target, "%s: to go down, use `downgrade %s`"
                % (target, target))
        elif ":" in target:
            raise exceptions.BadTarget(
                target, "a range (%s) is only for offline SQL: add --sql, "
                "or give a single target" % target)
    head = single_head(graph)
    start = one_revision(current, graph)
    if steps is not None:
        path = graph.between(start, head)
        if steps > len(path):
            raise exceptions.BadTarget(
                "+%d" % steps,
                "+%d goes past head %s: the database is at %s, %d "
                "revision(s) to go" % (steps, head, start or "base",
                                       len(path)))
        end = path[steps - 1]
    else:
        end = _named(graph, str(target), head)
    if end == start:
        return Plan(start, end)
    if end is None or end in graph.ancestors(start):
        raise exceptions.BadTarget(
            target, "%s is older than the database's revision %s: "
            "use `downgrade`" % (end or "base", start))
    return Plan(start, end, tuple(graph.between(start, end)))


def plan_offline(graph: Graph, target: str | None,
                 delta: int | None = None) -> Plan:
    """``--sql``: ``NNN``/``head`` from an empty database, or start:end.

    The database is never asked, so relative targets are refused.
    """
    if delta is not None:
        raise exceptions.BadTarget(
            delta, "--delta needs the database's revision, which --sql "
            "does not read: give start:end")
    if target is None or not str(target).strip():
        raise exceptions.BadTarget(
            None, "upgrade --sql needs a target: head, a revision id or "
            "start:end")
    target = str(target).strip()
    head = single_head(graph)
    if target.startswith(("+", "-")):
        raise exceptions.BadTarget(
            target, "%s is relative to the database's revision, which "
            "--sql does not read: give start:end" % target)
    if ":" not in target:
        end = _named(graph, target, head)
        if end is None:
            raise exceptions.BadTarget(target, "nothing to do up to base")
        return Plan(None, end, tuple(graph.between(None, end)))
    first, _, last = target.partition(":")
    bad = "bad range %r: " % target
    if not first or not last or ":" in last:
        raise exceptions.BadTarget(
            target, bad + "give start:end, e.g. 030:%s" % head)
    start = _named(graph, first, head)
    end = _named(graph, last, head)
    backwards = start is not None and start not in graph.ancestors(end)
    if end is None or end == start or backwards:
        raise exceptions.BadTarget(
            target, bad + "start must be older than end (downgrades are "
            "not supported)")
    return Plan(start, end, tuple(graph.between(start, end)))


def plan_downgrade(graph: Graph, current: Sequence[str] | None,
                   target: str | None) -> Plan:
    """Resolve a ``downgrade`` target (an id, ``base`` or ``-N``); the
    plan's ``pending`` are the revisions to undo, newest first.
    ``current`` None: only check the target's spelling."""
    if target is None or not str(target).strip():
        raise exceptions.BadTarget(
            None, "downgrade needs a target: a revision id, base or -N")
    target = str(target).strip()
    head = single_head(graph)
    m = re.match(r"^-(\d+)$", target)
    if ":" in target or target.startswith("+") or target in ("head",
                                                             "heads"):
        raise exceptions.BadTarget(
            target, "downgrade takes an older revision id, base or -N, "
            "not %r" % target)
    if current is None:
        if not m:
            _named(graph, target, head)
        return Plan(None, None)
    start = one_revision(current, graph)
    if m:
        steps = _steps(int(m.group(1)), target)
        path = graph.between(None, start) if start else []
        if steps > len(path):
            raise exceptions.BadTarget(
                target, "%s goes below base: the database is at %s, %d "
                "revision(s) above base" % (target, start or "base",
                                            len(path)))
        end = path[-steps - 1] if steps < len(path) else None
    else:
        end = _named(graph, target, head)
    if end == start:
        return Plan(start, end)
    if start is None or (end is not None
                         and end not in graph.ancestors(start)):
        raise exceptions.BadTarget(
            target, "%s is not older than the database's revision %s: "
            "use upgrade" % (end or "base", start or "base"))
    undo = graph.between(end, start)
    return Plan(start, end, tuple(reversed(undo)))


def plan_offline_downgrade(graph: Graph, target: str | None) -> Plan:
    """``downgrade --sql``: ``START:END`` (or just END, from head)."""
    if target is None or not str(target).strip():
        raise exceptions.BadTarget(
            None, "downgrade --sql needs START:END or an older revision")
    target = str(target).strip()
    head = single_head(graph)
    first, sep, last = target.partition(":")
    start = _named(graph, first, head) if sep else head
    if (sep and not last) or target.startswith("-"):
        raise exceptions.BadTarget(
            target, "downgrade --sql takes START:END (e.g. %s:040), not "
            "%r: it does not read the database" % (head, target))
    return plan_downgrade(graph, [start] if start else [],
                          last if sep else target)


def plan_stamp(graph: Graph, current: Sequence[str],
               revision: str | None) -> Plan:
    """Resolve ``stamp`` 's revision; an empty one is refused."""
    if revision is None or not str(revision).strip():
        raise exceptions.BadTarget(
            None, "stamp needs a revision: head or a revision id (to "
            "empty alembic_version on purpose, stamp base)")
    revision = str(revision).strip()
    if ":" in revision or revision.startswith(("+", "-")):
        raise exceptions.BadTarget(
            revision, "stamp takes one revision, not %r" % revision)
    head = single_head(graph)
    end = _named(graph, revision, head)
    start = one_revision(current, graph)
    return Plan(start, end)
