"""Building and running flows, without a database.

Flows are built from task lists with fake plugins (and with the real
ones, which need no database to be built); runs use tasks that touch
nothing. Planning is tested in test_revisions.py.
"""
from __future__ import annotations

import json

import pytest
from taskflow import task

from mistral_db_flows import exceptions
from mistral_db_flows import flows


# -- building ---------------------------------------------------------------

class Noop(task.Task):
    def execute(self):
        return {"task": self.name}


class Boom(task.Task):
    def execute(self):
        raise exceptions.SchemaConflict("table", "t", None, "a", "b")


def fake_loader(factories):
    def load(names):
        return [(name, factories[name]) for name in names]
    return load


FACTORIES = {
    "first": lambda ctx: [Noop("first")],
    "steps": lambda ctx: [Noop("step_%s" % r) for r in ctx.pending],
    "last": lambda ctx: Noop("last"),
    "boom": lambda ctx: [Boom("boom")],
}


def ctx(pending=("002", "003"), operation="upgrade"):
    plan = flows.Plan("001", pending[-1] if pending else "001",
                      tuple(pending))
    return flows.BuildContext(operation=operation,
                              database_url="sqlite://", plan=plan,
                              head="005")


def names_of(flow):
    return flows.atom_names(flow)


def test_flow_follows_the_task_list():
    """Tasks appear in the configured order; a factory may expand."""
    flow = flows.build(ctx(), ["first", "steps", "last"],
                       loader=fake_loader(FACTORIES))
    assert flow.name == "mistral-db-upgrade"
    assert names_of(flow) == ["first", "step_002", "step_003", "last"]
    flow = flows.build(ctx(), ["last", "first"],
                       loader=fake_loader(FACTORIES))
    assert names_of(flow) == ["last", "first"]


def test_real_plugins_compose_the_upgrade_flow():
    """migrate expands into one "upgrade to exactly X" task per revision."""
    flow = flows.build(ctx(("002", "003", "004")),
                       ["backup", "check_branches", "migrate", "verify"])
    assert names_of(flow) == ["backup", "check_branches", "migrate_002",
                              "migrate_003", "migrate_004", "verify"]
    migrate = [a for a, _ in flow.iter_nodes()][2]
    assert migrate.revision == "002"


def test_an_empty_plan_still_checks_and_verifies():
    """Nothing pending: the flow keeps its checks but has no migrate."""
    flow = flows.build(ctx(()), ["backup", "check_branches", "migrate",
                                 "verify"])
    assert names_of(flow) == ["backup", "check_branches", "verify"]


@pytest.mark.parametrize("factories,words", [
    ({"a": lambda ctx: [Noop("x")], "b": lambda ctx: [Noop("x")]},
     "already used"),
    ({"a": lambda ctx: ["not a task"]}, "not TaskFlow tasks"),
    ({"a": lambda ctx: 1 / 0}, "ZeroDivisionError"),
])
def test_misbehaving_plugins_are_errors(factories, words):
    """A factory that fails or returns junk stops the build clearly."""
    with pytest.raises(exceptions.PluginError) as info:
        flows.build(ctx(), list(factories), loader=fake_loader(factories))
    assert words in str(info.value)
    assert info.value.exit_code == 2


def test_task_lists_come_from_settings():
    """Without explicit names, the operation's configured list is used."""
    from mistral_db_flows import conf

    settings = conf.Settings(database_url="sqlite://",
                             tasks={"upgrade": ["last", "first"]})
    context = flows.BuildContext("upgrade", "sqlite://", flows.Plan(
        None, None), settings=settings)
    flow = flows.build(context, loader=fake_loader(FACTORIES))
    assert names_of(flow) == ["last", "first"]


# -- running ----------------------------------------------------------------

def test_run_reports_every_step_json_ready():
    """A successful run lists each step, done, with its JSON result."""
    flow = flows.build(ctx(), ["first", "steps", "last"],
                       loader=fake_loader(FACTORIES))
    outcome = flows.run(flow)
    assert outcome.cause is None and outcome.failed_step is None
    assert [(s.name, s.state) for s in outcome.steps] == [
        ("first", "done"), ("step_002", "done"), ("step_003", "done"),
        ("last", "done")]
    assert all(s.duration is not None for s in outcome.steps)
    json.dumps([s.to_dict() for s in outcome.steps])


def test_run_names_the_failed_step_and_keeps_the_cause():
    """A failure reverts earlier steps and says which one failed, why."""
    flow = flows.build(ctx(), ["first", "boom", "last"],
                       loader=fake_loader(FACTORIES))
    outcome = flows.run(flow)
    assert outcome.failed_step == "boom"
    assert isinstance(outcome.cause, exceptions.SchemaConflict)
    states = {s.name: s.state for s in outcome.steps}
    assert states == {"first": "reverted", "boom": "failed",
                      "last": "pending"}


class BadRevert(task.Task):
    def execute(self):
        return None

    def revert(self, *args, **kwargs):
        raise RuntimeError("revert broke too")


def test_failure_behind_a_wrapped_failure_is_unwrapped():
    """A failed revert makes TaskFlow raise WrappedFailure: unwrap it."""
    factories = dict(FACTORIES, bad_revert=lambda ctx: [BadRevert("br")])
    flow = flows.build(ctx(), ["bad_revert", "boom"],
                       loader=fake_loader(factories))
    outcome = flows.run(flow)
    assert outcome.failed_step == "boom"
    assert isinstance(outcome.cause, exceptions.SchemaConflict)


def test_unwrap_gives_the_first_original_exception():
    """WrappedFailure -> the exception inside it; others pass through."""
    from taskflow import exceptions as tf_exc
    from taskflow.types import failure

    try:
        raise KeyError("inner")
    except KeyError:
        wrapped = tf_exc.WrappedFailure([failure.Failure()])
    assert isinstance(flows._unwrap(wrapped), KeyError)
    plain = ValueError("x")
    assert flows._unwrap(plain) is plain


def test_tasks_that_do_not_fit_together_are_a_plugin_error():
    """A task requiring a value nobody provides fails before running."""
    class Needy(task.Task):
        def execute(self, nothing_provides_this):
            return None

    flow = flows.build(ctx(), ["needy"],
                       loader=fake_loader({"needy": lambda c: [Needy()]}))
    with pytest.raises(exceptions.PluginError) as info:
        flows.run(flow)
    assert "do not fit" in str(info.value)


class Fenced(task.Task):
    """A step whose commit finds the run's lock lost."""

    def execute(self):
        raise exceptions.StepHalted(exceptions.LockLost(
            database="m", reason="lost the lock on database m"))


class Recorded(Noop):
    reverted: list = []

    def revert(self, *args, **kwargs):
        Recorded.reverted.append(self.name)


def test_a_halted_step_reverts_nothing_and_stays_resumable():
    """A step halted by the fence is no failure: no step reverts, the
    run's error is the LockLost, and the halted step is left running
    (as a kill leaves it), so the same command resumes it."""
    Recorded.reverted = []
    flow = flows.build(ctx(), ["first", "fenced", "last"], loader=fake_loader(
        {"first": lambda ctx: [Recorded("first")],
         "fenced": lambda ctx: [Fenced("fenced")],
         "last": lambda ctx: [Noop("last")]}))
    with pytest.raises(exceptions.LockLost):
        flows.run(flow)
    assert Recorded.reverted == []
