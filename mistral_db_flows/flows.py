"""Flows: the TaskFlow flow doing what a plan (:mod:`revisions`) says.

Building turns the configured task names into plugin factories and lets
each contribute its tasks; running uses TaskFlow's serial engine and
reports every step. No Alembic here, and no planning: a plan is made
on the revision graph before anything is built.
"""
from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from typing import Any, Callable, Sequence

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import plugins
from mistral_db_flows import revisions
from mistral_db_flows import states

FLOW_PREFIX = "mistral-db-"


# The plan type lives with the planners; plugin authors and their tests
# build a BuildContext with flows.Plan (docs/plugins.md).
Plan = revisions.Plan


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a task factory may know when it builds its tasks.

    ``database_url`` is for task constructors only: it may carry a
    password and must never go into the engine store or a task result.
    """

    operation: str
    database_url: str
    plan: revisions.Plan
    head: str | None = None
    settings: conf.Settings | None = None
    # A new guarded run that will execute the flow right away: a task
    # may start slow work that needs nothing from the flow (the backup
    # starts its dump) while the rest is built and loaded.
    fresh_run: bool = False
    # The database's identity (``identity``), when the run knows it:
    # names its backup without asking the server again.
    identity: str | None = None

    @property
    def start(self) -> str | None:
        return self.plan.start

    @property
    def target(self) -> str | None:
        return self.plan.target

    @property
    def pending(self) -> tuple[str, ...]:
        return self.plan.pending


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
# A step waiting for something others hold (a lock): ``{"text": ...}``,
# passed on as ``progress(step, "waiting", details)`` at once; the step
# decides how often to say it.
STEP_WAITING = "mdf.step_waiting"


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

        def waiting(event_type: str, details: dict,
                    name: str = atom.name) -> None:
            progress(name, "waiting", dict(details))

        for event, listener in ((tf_task.EVENT_UPDATE_PROGRESS, heard),
                                (STEP_PROGRESS, heard),
                                (STEP_WAITING, waiting)):
            if notifier.can_be_registered(event):
                notifier.register(event, listener)
                undo.append(functools.partial(notifier.deregister, event,
                                              listener))
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


def public_result(result: Any) -> Any:
    """A task's result as reports show it: keys starting with ``_`` are
    the task's own revert data (e.g. populate's journal), not news."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items()
                if not str(k).startswith("_")}
    return result


def _drive(engine: Any, before_step: Callable[[], None] | None
           ) -> exceptions.MistralDbError | None:
    """Run ``engine`` to its end; the error that suspended it, if any.

    The engine yields SCHEDULING before it schedules the next atom, so
    a check there runs between steps, never inside one.
    """
    if before_step is None:
        engine.run()
        return None
    from taskflow import states as tf_states

    halted: exceptions.MistralDbError | None = None
    steps = engine.run_iter()
    try:
        state = next(steps)
        while True:
            suspend = False
            if state == tf_states.SCHEDULING and halted is None:
                try:
                    before_step()
                except exceptions.MistralDbError as exc:
                    halted, suspend = exc, True
            state = steps.send(suspend)
    except StopIteration:
        pass
    return halted


def run(flow: Any, store: dict | None = None,
        fetch: Sequence[str] = ("backup",), *,
        flow_detail: Any = None, backend: Any = None,
        progress: Callable[[str, str, Any], None] | None = None,
        before_step: Callable[[], None] | None = None,
        transient: dict | None = None) -> Outcome:
    """Run ``flow`` on the serial engine; never raises for a task failure.

    ``fetch`` names the flow's provided values worth reporting (they
    are absent from ``values`` when not provided). With ``flow_detail``
    and ``backend`` (a TaskFlow persistence backend) every state change
    is saved, so loading the same flow detail again resumes the run.
    ``progress(step, event, value)`` hears each step start and end
    (``value``: None at a start, the seconds taken at an end; a revert
    that returned nothing ends as ``"nothing_to_revert"``) and, for
    event ``"progress"``, a long step's progress (``value``: a dict with
    ``progress`` 0..1 and, when known, ``done`` and ``total`` bytes).
    ``before_step()`` is called before each step (or revert) is
    scheduled; if it raises one of our errors, the engine suspends
    before that step (the flow detail stays resumable) and the error is
    raised once it has. ``transient`` values join the store in memory
    only, never the logbook (what a resumed run computes again).
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
    if transient:
        engine.storage.inject(transient, transient=True)
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
            event = state.lower()
            if state == "REVERTED" and not info.get("result"):
                # A revert returns what it undid (see docs/plugins.md):
                # a read-only step, or a backup with nothing restored,
                # must not look as if it had reverted anything.
                event = "nothing_to_revert"
            if progress is not None:
                progress(name, event, took)
        if state == "SUCCESS":
            returned[name] = public_result(info.get("result"))
        elif state == "FAILURE" and name not in failed:
            failed.append(name)

    engine.atom_notifier.register("*", on_change)
    stop_listening = (_listen_to_progress(flow, progress)
                      if progress is not None else [])
    cause: BaseException | str | None = None
    halted: exceptions.MistralDbError | None = None
    try:
        halted = _drive(engine, before_step)
    except exceptions.StepHalted as halt:
        # Left as a kill leaves it: the step stays running, resumable.
        halted = halt.error
    except Exception as exc:
        cause = _step_failure(engine, failed) or _unwrap(exc)
    finally:
        for undo in stop_listening:
            undo()
    if halted is not None:
        raise halted
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
