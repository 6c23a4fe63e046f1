"""Plans and flows: what a command will do, and the TaskFlow flow doing it.

Planning is pure: it resolves a target (``head``, ``NNN``, ``+N``, a
delta, ``start:end``) against the revision graph and the database's
current revision before anything is built, so a bad target fails
without touching the database. Building turns the configured task names
into plugin factories and lets each contribute its tasks; running uses
TaskFlow's serial engine and reports every step. No Alembic here.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import time
import warnings
from typing import Any, Callable, Sequence

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import plugins
from mistral_db_flows import states

FLOW_PREFIX = "mistral-db-"


@dataclasses.dataclass(frozen=True)
class Plan:
    """Where a run starts, where it ends, and the revisions in between."""

    start: str | None
    target: str | None
    pending: tuple[str, ...] = ()

    @property
    def unchanged(self) -> bool:
        return not self.pending and self.start == self.target


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a task factory may know when it builds its tasks.

    ``database_url`` is for task constructors only: it may carry a
    password and must never go into the engine store or a task result.
    """

    operation: str
    database_url: str
    plan: Plan
    head: str | None = None
    settings: conf.Settings | None = None
    # A new guarded run that will execute the flow right away: a task
    # may start slow work that needs nothing from the flow (the backup
    # starts its dump) while the rest is built and loaded.
    fresh_run: bool = False

    @property
    def start(self) -> str | None:
        return self.plan.start

    @property
    def target(self) -> str | None:
        return self.plan.target

    @property
    def pending(self) -> tuple[str, ...]:
        return self.plan.pending


# -- planning (pure) -------------------------------------------------------

def single_head(graph: Any) -> str:
    """The one head of a sound graph; BranchError otherwise."""
    if not graph.sound:
        raise exceptions.BranchError(graph.branch_points, graph.heads,
                                     graph.missing)
    return graph.heads[0]


def one_revision(current: Sequence[str], graph: Any) -> str | None:
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
            "(downgrades are not supported)" % shown)
    return delta


def _named(graph: Any, text: str, head: str) -> str | None:
    """``head``, ``base`` (None) or a known id; UnknownRevision else."""
    if text in ("head", "heads"):
        return head
    if text == "base":
        return None
    if text in graph:
        return text
    raise exceptions.UnknownRevision(text)


def plan_upgrade(graph: Any, current: Sequence[str],
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
    if delta is not None:
        steps = _steps(delta, "--delta %s" % (delta,))
    else:
        target = str(target).strip()
        m = _RELATIVE.match(target)
        if m:
            steps = _steps(int(m.group(1)), target)
        elif target.startswith("-"):
            raise exceptions.BadTarget(
                target, "%s: downgrades are not supported" % target)
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
            "downgrades are not supported" % (end or "base", start))
    return Plan(start, end, tuple(graph.between(start, end)))


def plan_offline(graph: Any, target: str | None,
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


def plan_stamp(graph: Any, current: Sequence[str],
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


# -- building --------------------------------------------------------------

def flow_name(operation: str) -> str:
    return FLOW_PREFIX + operation


def operation_of(flow: Any) -> str:
    name = getattr(flow, "name", "") or ""
    return name[len(FLOW_PREFIX):] if name.startswith(FLOW_PREFIX) else name


Loader = Callable[[Sequence[str]], list]


def build(ctx: BuildContext, names: Sequence[str] | None = None,
          loader: Loader | None = None):
    """A linear flow of the tasks the named plugins contribute, in order."""
    from taskflow import atom
    from taskflow import flow as tf_flow
    from taskflow.patterns import linear_flow

    if names is None:
        names = (ctx.settings or conf.Settings(
            database_url=ctx.database_url)).task_names(ctx.operation)
    loaded = (loader or plugins.load)(list(names))
    flow = linear_flow.Flow(flow_name(ctx.operation))
    seen: dict[str, str] = {}
    for plugin_name, factory in loaded:
        try:
            made = factory(ctx)
        except exceptions.MistralDbError:
            raise
        except Exception as exc:
            raise exceptions.PluginError(
                plugin_name, "its factory failed: %s: %s"
                % (type(exc).__name__, exc)) from exc
        if isinstance(made, (atom.Atom, tf_flow.Flow)):
            made = [made]
        for item in made or []:
            if not isinstance(item, (atom.Atom, tf_flow.Flow)):
                raise exceptions.PluginError(
                    plugin_name, "its factory returned %r, not TaskFlow "
                    "tasks" % (item,))
            for name in atom_names(item):
                if name in seen:
                    raise exceptions.PluginError(
                        plugin_name, "task name %r is already used by "
                        "plugin %r" % (name, seen[name]))
                seen[name] = plugin_name
            flow.add(item)
    return flow


def atoms(item: Any) -> list[Any]:
    """The atoms of an atom or (nested) flow, in flow order."""
    from taskflow import flow as tf_flow

    if not isinstance(item, tf_flow.Flow):
        return [item]
    out = []
    for child, _meta in item.iter_nodes():
        out.extend(atoms(child))
    return out


def atom_names(item: Any) -> list[str]:
    """Atom names of an atom or (nested) flow, in flow order."""
    return [a.name for a in atoms(item)]


# A task's own progress event, heard by flows.run's listener only. A
# task reporting from another thread (the backup's progress thread)
# uses it instead of TaskFlow's update_progress, whose engine callback
# writes the logbook: that must stay on the engine's thread.
STEP_PROGRESS = "mdf.step_progress"


def _listen_to_progress(flow: Any, progress: Callable[..., None]
                        ) -> list[Callable[[], None]]:
    """Pass the tasks' progress events on to ``progress``.

    A long step (a backup, a restore) notifies its fraction done and,
    when it knows them, ``done``/``total`` bytes: as STEP_PROGRESS, or
    as TaskFlow's ``update_progress``.
    """
    from taskflow import task as tf_task

    undo: list[Callable[[], None]] = []
    for atom in atoms(flow):
        notifier = getattr(atom, "notifier", None)
        if notifier is None:
            continue

        def heard(event_type: str, details: dict,
                  name: str = atom.name) -> None:
            # The engine itself says 0.0 and 1.0 around every step.
            if "done" in details or 0 < details.get("progress", 0) < 1:
                progress(name, "progress", dict(details))

        for event in (tf_task.EVENT_UPDATE_PROGRESS, STEP_PROGRESS):
            if notifier.can_be_registered(event):
                notifier.register(event, heard)
                undo.append(functools.partial(notifier.deregister, event,
                                              heard))
    return undo


# -- running ---------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    """What running a flow gave: steps in order, and the failure if any."""

    steps: list[Any]
    values: dict[str, Any]
    failed_step: str | None = None
    cause: BaseException | str | None = None
    # Why a step's revert failed, by step (the backup's: its restore).
    revert_causes: dict[str, BaseException | str] = dataclasses.field(
        default_factory=dict)


def _engines():
    # Importing taskflow.engines warns about eventlet; not our concern.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import taskflow.engines

    return taskflow.engines


def _unwrap(exc: BaseException) -> BaseException | str:
    """The original exception behind a (wrapped) TaskFlow failure.

    After a revert (or a resumed revert) TaskFlow may raise a
    WrappedFailure holding several failures; the first is the step's.
    A failure restored from a logbook has only its text.
    """
    from taskflow import exceptions as tf_exc

    if isinstance(exc, tf_exc.WrappedFailure):
        failure = list(exc)[0]
        return failure.exception or failure.exception_str
    return exc


def _step_failure(engine: Any, failed: list[str]
                  ) -> BaseException | str | None:
    """The exception the first failed step raised, from the storage."""
    if not failed:
        return None
    try:
        failure = engine.storage.get_execute_failures().get(failed[0])
    except Exception:  # storage without it: fall back to the raised one
        return None
    if failure is None:
        return None
    return failure.exception or failure.exception_str


def _revert_failures(engine: Any) -> dict[str, BaseException | str]:
    """What the steps whose revert failed raised, from the storage."""
    try:
        failures = engine.storage.get_revert_failures()
    except Exception:  # storage without it: no details, still failed
        return {}
    return {name: failure.exception or failure.exception_str
            for name, failure in failures.items()}


def run(flow: Any, store: dict | None = None,
        fetch: Sequence[str] = ("backup",), *,
        flow_detail: Any = None, backend: Any = None,
        progress: Callable[[str, str, Any], None] | None = None
        ) -> Outcome:
    """Run ``flow`` on the serial engine; never raises for a task failure.

    ``fetch`` names the flow's provided values worth reporting (they
    are absent from ``values`` when not provided). With ``flow_detail``
    and ``backend`` (a TaskFlow persistence backend) every state change
    is saved, so loading the same flow detail again resumes the run.
    ``progress(step, event, value)`` hears each step start and end
    (``value``: None at a start, the seconds taken at an end) and, for
    event ``"progress"``, a long step's progress (``value``: a dict with
    ``progress`` 0..1 and, when known, ``done`` and ``total`` bytes).
    """
    from mistral_db_flows import results

    engines = _engines()
    load_args: dict[str, Any] = {}
    if flow_detail is not None:
        load_args = {"flow_detail": flow_detail, "backend": backend}
    try:
        engine = engines.load(flow, engine="serial",
                              store=dict(store or {}), **load_args)
    except exceptions.MistralDbError:
        raise
    except Exception as exc:
        if flow_detail is None or not list(flow_detail):
            raise
        # A save cut short (the disk filled up between two of TaskFlow's
        # saves) can leave a record TaskFlow cannot load again.
        raise exceptions.LogbookError(
            getattr(backend, "filename", "(logbook_connection)"),
            "the interrupted run's record is incomplete (%s)" % exc,
            advice="`abandon` that run (the database stays as it is), "
            "then run the command again") from exc
    try:
        engine.compile()
        engine.prepare()
        engine.validate()
    except exceptions.MistralDbError:
        raise  # e.g. the logbook cannot be written: not the tasks' fault
    except Exception as exc:
        raise exceptions.PluginError(
            "flow %s" % getattr(flow, "name", "?"),
            "the tasks do not fit together: %s" % exc) from exc
    started: dict[str, float] = {}
    durations: dict[str, float] = {}
    returned: dict[str, Any] = {}
    failed: list[str] = []

    def on_change(state: str, details: dict) -> None:
        info = details
        name = info.get("task_name") or info.get("retry_name")
        if not name:
            return
        if state in ("RUNNING", "REVERTING"):
            started[name] = time.monotonic()
            if progress is not None:
                progress(name, state.lower(), None)
        elif state in ("SUCCESS", "FAILURE", "REVERTED",
                       "REVERT_FAILURE") and name in started:
            took = round(time.monotonic() - started[name], 6)
            if state in ("SUCCESS", "FAILURE"):
                durations[name] = took
            if progress is not None:
                progress(name, state.lower(), took)
        if state == "SUCCESS":
            returned[name] = info.get("result")
        elif state == "FAILURE" and name not in failed:
            failed.append(name)

    engine.atom_notifier.register("*", on_change)
    stop_listening = (_listen_to_progress(flow, progress)
                      if progress is not None else [])
    cause: BaseException | str | None = None
    try:
        engine.run()
    except Exception as exc:
        cause = _step_failure(engine, failed) or _unwrap(exc)
    finally:
        for undo in stop_listening:
            undo()
    steps = []
    for name in atom_names(flow):
        state = engine.storage.get_atom_state(name)
        label = states.StepState.of_atom(state) or str(state).lower()
        if name in failed:
            # Reverted since, but what the reader needs is the failure.
            label = states.StepState.FAILED
        steps.append(results.Step(name, label, durations.get(name),
                                  returned.get(name)))
    values = {}
    for key in fetch:
        try:
            values[key] = engine.storage.fetch(key)
        except Exception:  # not provided by this flow (or not yet)
            continue
    if cause is not None and not failed:
        failed.append("flow")
    return Outcome(steps, values, failed[0] if failed else None, cause,
                   _revert_failures(engine) if cause is not None else {})
