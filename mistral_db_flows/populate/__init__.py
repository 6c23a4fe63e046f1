"""Populate: Mistral's standard actions and pre-installed workflows.

``populate(connection)`` reads every definition source (see
``sources``), validates all of them before touching the database, then
upserts the rows in one transaction: ids stay stable, changed
definitions are updated in place, system workflows no source defines any
more are deleted unless something refers to them, and rows users
created are left alone. A run that finds nothing to change writes
nothing. docs/populate.md has the details.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterable, Union

from mistral_db_flows.populate import errors
from mistral_db_flows.populate import report
from mistral_db_flows.populate import sources
from mistral_db_flows.populate import spec

if TYPE_CHECKING:
    import sqlalchemy as sa

# The public names, so callers need only this package.
PopulateReport = report.PopulateReport
PopulateError = errors.PopulateError
Source = sources.Source

Connectable = Union[str, "sa.Engine", "sa.Connection"]

_PARSERS = {spec.ACTION: spec.actions, spec.WORKFLOW: spec.workflows}


def populate(connection: Connectable, *, actions: bool = True,
             workflows: bool = True,
             extra_sources: Iterable[sources.Source] | None = None,
             plugins: bool = True) -> report.PopulateReport:
    """Bring the standard definitions in the database up to date.

    ``connection`` is a database URL, an Engine or a Connection. A
    Connection already inside a transaction is used as is (the caller
    commits or rolls back); otherwise populate commits on success and
    rolls back on any error. ``actions``/``workflows`` choose which
    kinds to populate (``populate_actions`` is ``workflows=False``).
    ``extra_sources`` adds definition files; ``plugins=False`` ignores
    installed plugins (the shipped actions are always read).

    Raises errors.PopulateError (nothing written) for an unusable source
    or definition, errors.SchemaNotReady for a database not at head.
    """
    kinds = [kind for kind, wanted in ((spec.ACTION, actions),
                                       (spec.WORKFLOW, workflows))
             if wanted]
    found = collect(kinds, extra_sources, plugins=plugins)
    definitions = load(found, kinds)
    result = _with_transaction(connection, definitions)
    result.sources = [{"kind": s.kind, "path": s.path, "origin": s.origin}
                      for s in found]
    return result


def collect(kinds: Iterable[str],
            extra_sources: Iterable[sources.Source] | None = None, *,
            plugins: bool = True) -> list[sources.Source]:
    """Every definition file to read, shipped ones first."""
    kinds = list(kinds)
    found = sources.shipped(kinds)
    if plugins:
        found += sources.plugins(kinds)
    found += [s for s in extra_sources or () if s.kind in kinds]
    return found


def load(found: Iterable[sources.Source],
         kinds: Iterable[str]) -> dict[str, list[spec.Definition]]:
    """Read and validate every source; refuse duplicates across them."""
    result: dict[str, list[spec.Definition]] = {k: [] for k in kinds}
    where: dict[tuple[str, str], str] = {}
    read: set[tuple[str, str]] = set()
    for source in found:
        # The same file reached twice (two entry points) is one source.
        file_key = (source.kind, os.path.realpath(source.path))
        if file_key in read:
            continue
        read.add(file_key)
        text = source.read()
        try:
            definitions = _PARSERS[source.kind](text, source.path)
        except spec.Invalid as exc:
            raise errors.DefinitionError(source.path, str(exc)) from None
        for definition in definitions:
            key = (definition.kind, definition.name)
            if key in where:
                raise errors.DuplicateDefinition(
                    definition.kind, definition.name, where[key],
                    source.path)
            where[key] = source.path
            result[definition.kind].append(definition)
    return result


def apply(conn: sa.Connection,
          definitions: dict[str, list[spec.Definition]],
          ) -> report.PopulateReport:
    """Upsert ``definitions`` using ``conn`` (no transaction handling)."""
    from mistral_db_flows.populate import plan
    from mistral_db_flows.populate import store

    plans = {}
    for kind, wanted in definitions.items():
        rows = store.read(conn, kind, [d.name for d in wanted])
        plans[kind] = plan.make(kind, wanted, rows)
    deletes: dict[str, list[str]] = {}
    for kind, p in plans.items():
        if p.gone:
            deletes[kind] = p.keep(store.referenced(
                conn, [row["id"] for row in p.gone]))
    for kind, p in plans.items():
        store.write(conn, p, deletes.get(kind, []))
    result = report.PopulateReport()
    for kind, p in plans.items():
        setattr(result, "actions" if kind == spec.ACTION else "workflows",
                p.changes)
    return result


def still_to_do(connection: Connectable, *, actions: bool = True,
                workflows: bool = True) -> list[str]:
    """What a populate would still add or update (empty: all in place).

    Read-only: ``verify`` uses it after ``populate``.
    """
    import sqlalchemy as sa

    from mistral_db_flows.populate import plan
    from mistral_db_flows.populate import store

    kinds = [kind for kind, wanted in ((spec.ACTION, actions),
                                       (spec.WORKFLOW, workflows))
             if wanted]
    definitions = load(collect(kinds), kinds)
    engine = (sa.create_engine(connection, poolclass=sa.pool.NullPool)
              if isinstance(connection, str) else None)
    try:
        with (engine or connection).connect() as conn:
            out = []
            for kind, wanted in definitions.items():
                rows = store.read(conn, kind, [d.name for d in wanted])
                changes = plan.make(kind, wanted, rows).changes
                out += ["%s %s is missing" % (kind, name)
                        for name in changes.added]
                out += ["%s %s differs from its definition" % (kind, name)
                        for name in changes.updated]
            return out
    finally:
        if engine is not None:
            engine.dispose()


def _with_transaction(connection: Connectable,
                      definitions: dict[str, list[spec.Definition]],
                      ) -> report.PopulateReport:
    import sqlalchemy as sa

    if isinstance(connection, str):
        engine = sa.create_engine(connection, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                return apply(conn, definitions)
        finally:
            engine.dispose()
    if isinstance(connection, sa.Engine):
        with connection.begin() as conn:
            return apply(conn, definitions)
    if connection.in_transaction():
        return apply(connection, definitions)
    with connection.begin():
        return apply(connection, definitions)
