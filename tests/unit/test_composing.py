"""Namespacing our flows for a host's parent flow (no database: the
flows are built from fake plugins)."""
from __future__ import annotations

from taskflow import task
from taskflow.patterns import linear_flow

from mistral_db_flows import composing
from mistral_db_flows import flows


class Makes(task.Task):
    default_provides = "made"

    def execute(self, run_id=None):
        return "made"


class Uses(task.Task):
    def execute(self, made, run_id=None):
        return made


def _flow():
    return linear_flow.Flow(flows.flow_name("upgrade")).add(
        Makes(name="backup"), Uses(name="verify"))


def test_no_prefix_keeps_every_name():
    flow = _flow()
    assert composing.namespaced(flow, None) is flow
    assert flows.atom_names(flow) == ["backup", "verify"]
    assert list(flows.atoms(flow)[0].provides) == ["made"]


def test_prefix_renames_atoms_and_provided_symbols_not_store_ones():
    flow = composing.namespaced(_flow(), "a.")
    makes, uses = flows.atoms(flow)
    assert flows.atom_names(flow) == ["a.backup", "a.verify"]
    assert list(makes.provides) == ["a.made"]
    assert dict(uses.rebind) == {"made": "a.made", "run_id": "run_id"}
    assert set(uses.requires) == {"a.made"}
    assert set(uses.optional) == {"run_id"}
    assert flows.operation_of(flow) == "upgrade"


def test_two_prefixed_flows_run_in_one_parent():
    from taskflow import engines
    from taskflow.patterns import unordered_flow

    parent = unordered_flow.Flow("host").add(
        composing.namespaced(_flow(), "a."),
        composing.namespaced(_flow(), "b."))
    engine = engines.load(parent, engine="parallel", max_workers=2)
    engine.run()
    assert engine.storage.fetch("a.made") == "made"
    assert engine.storage.fetch("b.made") == "made"
