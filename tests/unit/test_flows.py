"""Planning, building and running flows, without a database.

Targets are resolved against small made-up revision graphs; flows are
built from task lists with fake plugins (and with the real ones, which
need no database to be built); runs use tasks that touch nothing.
"""
from __future__ import annotations

import json

import pytest
from taskflow import task

from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import migration


def chain(n: int, heads: int = 1) -> migration.Graph:
    """001..00n in one chain; extra heads branch off 001."""
    files = []
    for i in range(1, n + 1):
        rev = "%03d" % i
        down = ("%03d" % (i - 1),) if i > 1 else ()
        files.append(migration.RevisionFile(rev, down, "doc " + rev, rev))
    for j in range(1, heads):
        files.append(migration.RevisionFile("b%d" % j, ("001",), "b", "b"))
    return migration.Graph(files)


G = chain(5)


# -- the graph --------------------------------------------------------------

def test_graph_of_a_chain():
    """A chain has one base, one head, no branch point and is sound."""
    assert (G.bases, G.heads, G.branch_points, G.missing) == (
        ["001"], ["005"], [], [])
    assert G.sound
    assert G.order == ["001", "002", "003", "004", "005"]
    assert G.between("002", "005") == ["003", "004", "005"]
    assert G.between(None, "002") == ["001", "002"]
    assert G.ancestors("003") == {"001", "002", "003"}


def test_graph_with_two_heads_and_a_gap():
    """Branches and dangling down revisions make the graph unsound."""
    branched = chain(3, heads=2)
    assert branched.heads == ["003", "b1"]
    assert branched.branch_points == ["001"]
    assert not branched.sound
    gap = migration.Graph([
        migration.RevisionFile("001", (), "", ""),
        migration.RevisionFile("003", ("002",), "", "")])
    assert gap.missing == ["002"] and not gap.sound


def test_parser_reads_what_alembic_reads():
    """The pure parser agrees with Alembic on every shipped revision."""
    graph = migration.graph()
    scripts = migration.revisions()
    assert [s.revision for s in scripts] == graph.order
    for script in scripts:
        parsed = graph.revisions[script.revision]
        assert parsed.down_revision == script.down_revision
        assert parsed.doc == script.doc, script.revision


def test_parser_handles_annotations_tuples_and_no_docstring(tmp_path):
    """Newer Alembic templates annotate; merges list several parents."""
    path = tmp_path / "x.py"
    path.write_text('# comment\nrevision: str = "m1"\n'
                    'down_revision: tuple = (\n    "a",\n    "b",\n)\n')
    parsed = migration.parse_revision_file(str(path))
    assert parsed.id == "m1"
    assert parsed.down_revision == ["a", "b"]
    assert parsed.doc == ""
    path.write_text('"""Not a revision."""\nx = 1\n')
    assert migration.parse_revision_file(str(path)) is None


def test_doc_is_the_first_paragraph(tmp_path):
    """Like Alembic's Script.doc: stripped, up to the first blank line."""
    path = tmp_path / "y.py"
    path.write_text('"""\nFirst line\n   continued\n\nRevision ID: 9\n"""\n'
                    'revision = "009"\ndown_revision = None\n')
    assert migration.parse_revision_file(str(path)).doc == \
        "First line\n   continued"


# -- upgrade targets --------------------------------------------------------

@pytest.mark.parametrize("current,target,delta,expected", [
    ([], "head", None, (None, "005", ("001", "002", "003", "004", "005"))),
    (["002"], "head", None, ("002", "005", ("003", "004", "005"))),
    (["002"], "heads", None, ("002", "005", ("003", "004", "005"))),
    (["002"], "004", None, ("002", "004", ("003", "004"))),
    (["002"], "+1", None, ("002", "003", ("003",))),
    ([], "+2", None, (None, "002", ("001", "002"))),
    (["002"], None, 3, ("002", "005", ("003", "004", "005"))),
    (["002"], None, "2", ("002", "004", ("003", "004"))),
    (["005"], "head", None, ("005", "005", ())),
    (["003"], "003", None, ("003", "003", ())),
    ([], "base", None, (None, None, ())),
])
def test_upgrade_targets(current, target, delta, expected):
    """head, NNN, +N and a delta resolve against the current revision."""
    plan = flows.plan_upgrade(G, current, target, delta)
    assert (plan.start, plan.target, plan.pending) == expected
    assert plan.unchanged == (not expected[2])


@pytest.mark.parametrize("current,target,delta,error,words", [
    ([], None, None, exceptions.BadTarget, "provide a revision"),
    ([], "  ", None, exceptions.BadTarget, "provide a revision"),
    ([], "head", 1, exceptions.BadTarget, "not both"),
    ([], None, 0, exceptions.BadTarget, "--delta 0"),
    ([], None, -1, exceptions.BadTarget, "--delta -1"),
    ([], None, "x", exceptions.BadTarget, "not a number"),
    ([], None, True, exceptions.BadTarget, "not a number"),
    ([], "+0", None, exceptions.BadTarget, "+0"),
    (["003"], "+3", None, exceptions.BadTarget, "past head"),
    (["005"], "+1", None, exceptions.BadTarget, "past head"),
    ([], None, 6, exceptions.BadTarget, "past head"),
    (["003"], "-1", None, exceptions.BadTarget, "downgrade"),
    (["003"], "002", None, exceptions.BadTarget, "downgrade"),
    (["003"], "base", None, exceptions.BadTarget, "downgrade"),
    ([], "001:003", None, exceptions.BadTarget, "--sql"),
    ([], "999", None, exceptions.UnknownRevision, "'999'"),
    ([], "abc", None, exceptions.UnknownRevision, "'abc'"),
    (["999"], "head", None, exceptions.UnknownRevision, "'999'"),
    (["002", "003"], "head", None, exceptions.MistralDbError, "several"),
])
def test_bad_upgrade_targets(current, target, delta, error, words):
    """Every bad target is refused with a message saying what is wrong."""
    with pytest.raises(error) as info:
        flows.plan_upgrade(G, current, target, delta)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_stamped_unknown_revision_says_it_is_the_database():
    """An unknown stamped revision names the database, not the target."""
    with pytest.raises(exceptions.UnknownRevision) as info:
        flows.plan_upgrade(G, ["999"], "head")
    assert info.value.where == "database"
    assert info.value.exit_code == 4


def test_branched_graph_is_refused():
    """Several heads: "head" means nothing, so nothing is planned."""
    with pytest.raises(exceptions.BranchError) as info:
        flows.plan_upgrade(chain(3, heads=2), [], "head")
    assert info.value.heads == ["003", "b1"]
    assert info.value.branch_points == ["001"]


# -- offline targets --------------------------------------------------------

@pytest.mark.parametrize("target,expected", [
    ("head", (None, "005")),
    ("003", (None, "003")),
    ("002:004", ("002", "004")),
    ("002:head", ("002", "005")),
    ("base:003", (None, "003")),
])
def test_offline_targets(target, expected):
    """--sql: a target is from the empty database; start:end a range."""
    plan = flows.plan_offline(G, target)
    assert (plan.start, plan.target) == expected


@pytest.mark.parametrize("target,delta,error,words", [
    (None, None, exceptions.BadTarget, "needs a target"),
    ("head", 1, exceptions.BadTarget, "--delta"),
    ("+1", None, exceptions.BadTarget, "start:end"),
    (":", None, exceptions.BadTarget, "range"),
    ("002:", None, exceptions.BadTarget, "range"),
    (":004", None, exceptions.BadTarget, "range"),
    ("1:2:3", None, exceptions.BadTarget, "range"),
    ("004:002", None, exceptions.BadTarget, "004:002"),
    ("003:003", None, exceptions.BadTarget, "older"),
    ("base", None, exceptions.BadTarget, "base"),
    ("abc:def", None, exceptions.UnknownRevision, "'abc'"),
    ("002:999", None, exceptions.UnknownRevision, "'999'"),
    ("999", None, exceptions.UnknownRevision, "'999'"),
])
def test_bad_offline_targets(target, delta, error, words):
    """Bad ranges and relative targets are refused before any SQL."""
    with pytest.raises(error) as info:
        flows.plan_offline(G, target, delta)
    assert words in str(info.value)


# -- stamp ------------------------------------------------------------------

@pytest.mark.parametrize("current,revision,expected", [
    (["002"], "head", ("002", "005")),
    ([], "003", (None, "003")),
    (["003"], "base", ("003", None)),
    (["003"], "003", ("003", "003")),
])
def test_stamp_targets(current, revision, expected):
    """stamp moves only the version pointer, up or down."""
    plan = flows.plan_stamp(G, current, revision)
    assert (plan.start, plan.target, plan.pending) == expected + ((),)


@pytest.mark.parametrize("revision,error,words", [
    (None, exceptions.BadTarget, "stamp needs a revision"),
    ("", exceptions.BadTarget, "stamp needs a revision"),
    ("001:003", exceptions.BadTarget, "one revision"),
    ("+1", exceptions.BadTarget, "one revision"),
    ("999", exceptions.UnknownRevision, "'999'"),
])
def test_bad_stamp_targets(revision, error, words):
    """An empty revision is refused: upstream would empty the table."""
    with pytest.raises(error) as info:
        flows.plan_stamp(G, ["002"], revision)
    assert words in str(info.value)


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
