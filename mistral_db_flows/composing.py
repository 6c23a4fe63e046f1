"""Our flows inside a host's flow: names, and failures of the host's
own tasks.

A host (an upgrade orchestrator) adds our flows to its own and runs them
on its own engine, perhaps several databases' flows in one parent flow
on TaskFlow's parallel engine. Both adjustments here change a built
flow's atoms in place and leave a flow without them exactly as built:
recorded runs match atoms by name.
"""
from __future__ import annotations

import functools
from typing import Any

from mistral_db_flows import flows


def namespaced(flow: Any, prefix: str | None) -> Any:
    """``flow`` with every atom named ``prefix + name``.

    TaskFlow refuses duplicate atom names in one engine, and a symbol
    provided twice (``backup``) would reach the other database's steps:
    the symbols an atom of ``flow`` provides, and requirements on them,
    are prefixed too. What the run's store gives (``run_id``,
    ``prior_backup``) keeps its name.
    """
    if not prefix:
        return flow
    from taskflow.types import sets

    members = flows.atoms(flow)
    provided = {symbol for a in members for symbol in a.provides}

    def renamed(symbol: str) -> str:
        return prefix + symbol if symbol in provided else symbol

    for a in members:
        a.name = prefix + a.name
        a.save_as = type(a.save_as)(
            (renamed(k), v) for k, v in a.save_as.items())
        a.provides = sets.OrderedSet(a.save_as)
        for mapping in ("rebind", "revert_rebind"):
            old = getattr(a, mapping)
            setattr(a, mapping, type(old)(
                (arg, renamed(symbol)) for arg, symbol in old.items()))
        for symbols in ("requires", "optional", "revert_optional"):
            setattr(a, symbols, sets.OrderedSet(
                renamed(r) for r in getattr(a, symbols)))
    return flow


def _revert_for_own_failures(atom: Any, revert: Any, own: frozenset[str],
                             *args: Any, **kwargs: Any) -> Any:
    failures = kwargs.get("flow_failures") or {}
    if failures and not own.intersection(failures):
        # Only the host's tasks failed: the database keeps what our
        # steps did (new services may already have written to it); a
        # step's undo data for it goes.
        kept = getattr(atom, "kept", None)
        if kept is not None:
            kept()
        return None
    return revert(*args, **kwargs)


def revert_only_own_failures(flow: Any) -> Any:
    """``flow`` whose atoms revert only when an atom of ``flow`` failed,
    not when a host task outside it did (see docs/api.md, "When a host
    task after ours fails")."""
    members = flows.atoms(flow)
    own = frozenset(a.name for a in members)
    for a in members:
        # An instance attribute: TaskFlow calls task.revert(**arguments)
        # with the arguments it mapped from the class's signature.
        a.revert = functools.partial(_revert_for_own_failures, a,
                                     a.revert, own)
    return flow
