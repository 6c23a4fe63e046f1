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

import contextlib
import dataclasses
import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Union

from mistral_db_flows import exceptions
from mistral_db_flows.populate import report
from mistral_db_flows.populate import sources
from mistral_db_flows.populate import spec

if TYPE_CHECKING:
    import sqlalchemy as sa

    from mistral_db_flows import dbapi

# The public names, so callers need only this package.
PopulateReport = report.PopulateReport
PopulateError = exceptions.PopulateError
Source = sources.Source

Connectable = Union[str, "sa.Engine", "sa.Connection"]

_PARSERS = {spec.ACTION: spec.actions, spec.WORKFLOW: spec.workflows}


@dataclasses.dataclass(frozen=True)
class Loaded:
    """Definition sources read and validated once (see :func:`read`):
    the run's preflight hands them to its populate and verify steps,
    so a run reads its sources once, before anything is changed."""

    kinds: tuple[str, ...]
    definitions: dict[str, list[spec.Definition]]
    sources: tuple[sources.Source, ...]
    plugins: tuple[str, ...]

    def covers(self, kinds: Iterable[str]) -> bool:
        return set(kinds) <= set(self.kinds)


def read(kinds: Iterable[str],
         extra_sources: Iterable[sources.Source] | None = None, *,
         plugins: bool = True) -> Loaded:
    """Every source of ``kinds`` read and validated (PopulateError
    when one is unusable)."""
    kinds = tuple(kinds)
    called: list[str] = []
    found = collect(kinds, extra_sources, plugins=plugins, called=called)
    return Loaded(kinds, load(found, kinds), tuple(found), tuple(called))


def populate(connection: Connectable, *, actions: bool = True,
             workflows: bool = True,
             extra_sources: Iterable[sources.Source] | None = None,
             plugins: bool = True,
             remove_missing: bool = False,
             loaded: Loaded | None = None,
             journal_run: str | None = None) -> report.PopulateReport:
    """Bring the standard definitions in the database up to date.

    ``connection`` is a database URL, an Engine or a Connection. A
    Connection already inside a transaction is used as is (the caller
    commits or rolls back); otherwise populate commits on success and
    rolls back on any error. ``actions``/``workflows`` choose which
    kinds to populate (``populate_actions`` is ``workflows=False``).
    ``extra_sources`` adds definition files; ``plugins=False`` ignores
    installed plugins (the shipped actions are always read). System
    workflows no source read here defines are kept (reported as
    ``missing``) unless ``remove_missing``: another environment, e.g.
    Mistral's own, may have the plugin that provides them.

    ``loaded`` (from :func:`read`, covering these kinds) is used
    instead of reading the sources again. With ``journal_run`` (a run's
    id) what populate overwrites or removes is also kept in the
    database, in the same transaction (:mod:`populate.journal`), for
    :func:`undo_run`.

    Raises exceptions.PopulateError (nothing written) for an unusable
    source or definition, exceptions.SchemaNotReady for a database not
    at head.
    """
    kinds = [kind for kind, wanted in ((spec.ACTION, actions),
                                       (spec.WORKFLOW, workflows))
             if wanted]
    if loaded is None or not loaded.covers(kinds):
        loaded = read(kinds, extra_sources, plugins=plugins)
    definitions = {kind: loaded.definitions[kind] for kind in kinds}
    result = _with_transaction(connection, definitions,
                               remove_missing=remove_missing,
                               journal_run=journal_run)
    result.sources = [{"kind": s.kind, "path": s.path, "origin": s.origin}
                      for s in loaded.sources if s.kind in kinds]
    result.plugins = list(loaded.plugins)
    return result


def collect(kinds: Iterable[str],
            extra_sources: Iterable[sources.Source] | None = None, *,
            plugins: bool = True,
            called: list[str] | None = None) -> list[sources.Source]:
    """Every definition file to read, shipped ones first; ``called``
    gets every plugin asked (``namespace:name``), files or none."""
    kinds = list(kinds)
    found = sources.shipped(kinds)
    if plugins:
        found += sources.plugins(kinds, called=called)
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
            raise exceptions.DefinitionError(source.path,
                                             str(exc)) from None
        for definition in definitions:
            key = (definition.kind, definition.name)
            if key in where:
                raise exceptions.DuplicateDefinition(
                    definition.kind, definition.name, where[key],
                    source.path)
            where[key] = source.path
            result[definition.kind].append(definition)
    return result


def apply(handle: dbapi.Handle,
          definitions: dict[str, list[spec.Definition]], *,
          remove_missing: bool = False,
          before_write: Callable[[], None] | None = None
          ) -> report.PopulateReport:
    """Upsert ``definitions`` through ``handle`` (no transaction
    handling); ``before_write()`` is called once before the first
    write, when there is one."""
    from mistral_db_flows.populate import plan
    from mistral_db_flows.populate import store

    plans = {}
    for kind, wanted in definitions.items():
        rows = store.read(handle, kind, [d.name for d in wanted])
        plans[kind] = plan.make(kind, wanted, rows)
    deletes: dict[str, list[str]] = {}
    for kind, p in plans.items():
        if p.gone:
            # Kept anyway without remove_missing: no need to ask.
            referenced = store.referenced(
                handle, [row["id"] for row in p.gone]) \
                if remove_missing else {}
            deletes[kind] = p.keep(referenced,
                                   remove_missing=remove_missing)
    result = report.PopulateReport()
    writing = [kind for kind, p in plans.items()
               if p.add or p.update or deletes.get(kind)]
    if writing and before_write is not None:
        before_write()
    for kind, p in plans.items():
        if kind in writing:
            result.journal[kind] = store.write(handle, p,
                                               deletes.get(kind, []))
    for kind, p in plans.items():
        setattr(result, "actions" if kind == spec.ACTION else "workflows",
                p.changes)
    return result


def undo(connection: Connectable, journal: dict[str, Any]) -> None:
    """Undo a populate exactly, in one transaction, from the journal
    its report carried (``PopulateReport.journal``)."""
    from mistral_db_flows.populate import store

    with _opened(connection, write=True) as handle:
        for kind, entry in journal.items():
            store.undo(handle, kind, entry)


def undo_run(connection: Connectable, run_id: str | None,
             fallback: dict[str, Any] | None = None) -> bool:
    """Undo what run ``run_id``'s populate wrote, from the journal it
    kept in the database (newest attempt first), and forget that
    journal, in one transaction; re-running it after it committed
    changes nothing more. ``fallback`` is a journal recorded elsewhere
    (a run of an earlier build kept it in the logbook). Whether there
    was anything to undo."""
    from mistral_db_flows.populate import journal as undo_journal
    from mistral_db_flows.populate import store

    with _opened(connection, write=True) as handle:
        kept = undo_journal.entries(handle, run_id) if run_id else []
        for entry in kept or ([fallback] if fallback else []):
            for kind, written in entry.items():
                store.undo(handle, kind, written)
        if kept and run_id:
            undo_journal.forget(handle, run_id)
    if kept and isinstance(connection, str):
        drop_journal(connection)
    return bool(kept or fallback)


def drop_journal(url: str) -> None:
    """Drop populate's journal table, if any (a run ended well, was
    abandoned, or reverted)."""
    from mistral_db_flows import dbapi
    from mistral_db_flows.populate import journal as undo_journal

    # (A SQLite file that does not exist is DatabaseUnreachable here:
    # no journal, which the caller knows to ignore.)
    handle = dbapi.connect(url)
    try:
        undo_journal.drop(handle)
    finally:
        handle.close()


def still_to_do(connection: Connectable, *, actions: bool = True,
                workflows: bool = True,
                loaded: Loaded | None = None) -> list[str]:
    """What a populate would still add or update (empty: all in place).

    Read-only: ``verify`` uses it after ``populate`` (with the run's
    ``loaded`` sources, not read again).
    """
    from mistral_db_flows.populate import plan
    from mistral_db_flows.populate import store

    kinds = [kind for kind, wanted in ((spec.ACTION, actions),
                                       (spec.WORKFLOW, workflows))
             if wanted]
    if loaded is None or not loaded.covers(kinds):
        loaded = read(kinds)
    definitions = {kind: loaded.definitions[kind] for kind in kinds}
    out = []
    with _opened(connection, write=False) as handle:
        for kind, wanted in definitions.items():
            rows = store.read(handle, kind, [d.name for d in wanted])
            changes = plan.make(kind, wanted, rows).changes
            out += ["%s %s is missing" % (kind, name)
                    for name in changes.added]
            out += ["%s %s differs from its definition" % (kind, name)
                    for name in changes.updated]
    return out


def _with_transaction(connection: Connectable,
                      definitions: dict[str, list[spec.Definition]], *,
                      remove_missing: bool,
                      journal_run: str | None = None
                      ) -> report.PopulateReport:
    from mistral_db_flows.populate import journal as undo_journal

    with _opened(connection, write=True) as handle:
        keep = None
        if journal_run is not None:
            # Only a populate that writes makes the table (a second
            # populate, finding all in place, costs no DDL).
            def keep() -> None:
                undo_journal.prepare(handle)
        result = apply(handle, definitions, remove_missing=remove_missing,
                       before_write=keep)
        if journal_run is not None and result.journal:
            undo_journal.save(handle, journal_run, result.journal)
        return result


@contextlib.contextmanager
def _opened(connection: Connectable, *,
            write: bool) -> Iterator[dbapi.Handle]:
    """A driver connection for ``connection``, in the right transaction.

    A URL is opened here (no SQLAlchemy) and closed afterwards. An Engine
    or Connection lends its DB-API connection; a Connection already in a
    transaction is used as is, the caller commits or rolls back. When
    populate owns the transaction (``write``), it is one for the whole
    run, committed on success and rolled back on any error; reading
    alone (``write=False``) always ends in a rollback.
    """
    if isinstance(connection, str):
        handle = _connect(connection)
        try:
            if write:
                handle.begin()
            yield handle
            if write:
                handle.commit()
            else:
                handle.rollback()
        except BaseException:
            # Keep the original error when the rollback fails too.
            with contextlib.suppress(Exception):
                handle.rollback()
            raise
        finally:
            handle.close()
        return
    import sqlalchemy as sa

    if isinstance(connection, sa.Engine):
        with connection.connect() as conn:
            with _opened(conn, write=write) as handle:
                yield handle
        return
    handle = _lend(connection)
    if connection.in_transaction():
        yield handle
        return
    transaction = connection.begin()
    try:
        raw = handle.conn.dbapi_connection
        if write and handle.dialect == "sqlite" \
                and not getattr(raw, "in_transaction", True):
            # pysqlite would only begin at the first write: read and
            # write in the same transaction.
            handle.begin()
        yield handle
    except BaseException:
        transaction.rollback()
        raise
    if write:
        transaction.commit()
    else:
        transaction.rollback()


def _connect(url: str) -> dbapi.Handle:
    """dbapi.connect; a SQLite file that does not exist yet is a
    database not at head (it is never created by populate)."""
    from mistral_db_flows import dbapi
    from mistral_db_flows import exceptions

    try:
        return dbapi.connect(url)
    except exceptions.DatabaseUnreachable:
        parsed = dbapi.parse(url)
        path = parsed.backend == "sqlite" and parsed.sqlite_path
        if path and not os.path.exists(path):
            raise exceptions.SchemaNotReady(
                "database file %s does not exist" % path) from None
        raise


def _lend(conn: sa.Connection) -> dbapi.Handle:
    """A Handle on the DB-API connection behind a SQLAlchemy Connection
    (never closed by us: it stays the Connection's)."""
    from mistral_db_flows import dbapi

    dialect = conn.dialect
    if dialect.paramstyle not in ("qmark", "format", "pyformat"):
        raise exceptions.PopulateError(
            None, "the %s driver's parameter style (%s) is not supported"
            % (dialect.driver, dialect.paramstyle))
    name = "mysql" if dialect.name == "mariadb" else dialect.name
    return dbapi.Handle(conn.connection, name,
                        qmark=dialect.paramstyle == "qmark")
