"""verify: the database is where the run meant to leave it.

Always: ``alembic_version`` equals the target. At head, when the models
(``mistral_db_flows.models``) are there: the live schema equals the
models' up to upstream's known drift (``mistral_db_flows.known_drift``),
compared in generic terms against the models created in an in-memory
SQLite database, so verification never writes to the target.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

from taskflow import task

from mistral_db_flows import dbapi
from mistral_db_flows import exceptions
from mistral_db_flows import version_table

LOG = logging.getLogger(__name__)


def models_available() -> bool:
    return all(importlib.util.find_spec("mistral_db_flows." + m)
               for m in ("models", "known_drift"))


def expected_schema(cache_dir: str | None = None) -> dict:
    """The models' schema in schema_dump form (SQLite, generic terms).

    Building it (the models created in an in-memory SQLite database and
    reflected) costs ~0.05 s with its imports; with ``cache_dir`` it is
    kept in a file named after the sources it comes from and
    SQLAlchemy's version, so a changed model never reads a stale copy.
    """
    import hashlib
    import json

    import sqlalchemy

    if cache_dir is None:
        from mistral_db_flows import models

        return models.create_and_dump("sqlite://")
    digest = hashlib.sha256(sqlalchemy.__version__.encode())
    for name in ("models", "schema_dump"):
        found = importlib.util.find_spec("mistral_db_flows." + name)
        origin = found.origin if found is not None else None
        if origin is None:  # not from files: nothing to key a cache on
            return expected_schema(None)
        with open(origin, "rb") as source:
            digest.update(source.read())
    path = os.path.join(cache_dir, "models-%s.json" % digest.hexdigest()[:16])
    try:
        with open(path, encoding="utf-8") as cached:
            return json.load(cached)
    except (OSError, ValueError):
        pass
    schema = expected_schema(None)
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        partial = "%s.%d.partial" % (path, os.getpid())
        with open(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC,
                          0o600), "w", encoding="utf-8") as out:
            json.dump(schema, out)
        os.replace(partial, path)
    except OSError:  # a cache we cannot write is only slower
        pass
    return schema


def model_differences(database_url: str,
                      cache_dir: str | None = None) -> list[str]:
    """Live schema vs the models, minus upstream's known drift and the
    operators' own objects (see :func:`model_report`)."""
    return model_report(database_url, cache_dir)[0]


def model_report(database_url: str, cache_dir: str | None = None
                 ) -> tuple[list[str], list[str]]:
    """``(problems, not_mistrals)``: live schema vs the models.

    ``problems`` are the differences of Mistral's own objects, minus
    upstream's known drift. ``not_mistrals`` names the objects that are
    not Mistral's (an operator's table, an index on a Mistral table,
    views, triggers, routines): they are kept and only reported, as
    upstream's upgrades ignore them too.
    """
    from mistral_db_flows import known_drift
    from mistral_db_flows import schema_compare
    from mistral_db_flows import schema_dump

    expected = expected_schema(cache_dir)
    # The run's connection (the migrate steps' one, closed when the run
    # ends): a new MariaDB connection costs 20 ms. Leaving the block
    # rolls back: no snapshot or metadata lock stays behind.
    with dbapi.sqlalchemy_connection(database_url) as conn:
        dialect = conn.dialect.name
        actual = schema_dump.dump_connection(conn)
        others = schema_dump.other_objects(conn)
    if dialect in ("mysql", "mariadb"):
        expected = _with_foreign_key_indexes(expected)
    lines = schema_compare.diff(expected, actual, schema_compare.GENERIC)
    lines = known_drift.unknown(lines, dialect, schema_compare.GENERIC)
    # Upstream's own extra table and indexes are known drift: they
    # were dropped from ``lines`` above, so they never count as foreign.
    foreign = [(line, label) for line, label
               in schema_compare.foreign_objects(expected, actual)
               if line in lines]
    foreign_lines = {line for line, _ in foreign}
    return ([line for line in lines if line not in foreign_lines],
            [label for _, label in foreign] + others)


def _with_foreign_key_indexes(schema: dict) -> dict:
    """The schema as MySQL would create it: every foreign key indexed.

    MySQL adds an index on a foreign key's columns unless an index (or
    the primary key) already starts with them; the models' SQLite schema
    has none of these, the live MySQL one has them all.
    """
    for table in schema["tables"].values():
        prefixes = [list(i["columns"]) for i in table["indexes"]]
        prefixes += [list(u["columns"])
                     for u in table["unique_constraints"]]
        pk = (table.get("primary_key") or {}).get("columns")
        if pk:
            prefixes.append(list(pk))
        for fk in table["foreign_keys"]:
            cols = list(fk["columns"])
            if not any(p[:len(cols)] == cols for p in prefixes):
                table["indexes"].append({"name": cols[0], "columns": cols,
                                         "unique": False})
                prefixes.append(cols)
    return schema


class Verify(task.Task):
    """Read-only check of the result; a failure fails the run."""

    def __init__(self, database_url: str, target: str | None,
                 compare_models: bool, populated: str | None = None,
                 cache_dir: str | None = None) -> None:
        super().__init__(name="verify")
        self._database_url = database_url
        self._cache_dir = cache_dir
        self.target = target
        self.compare_models = compare_models
        # "populate" or "populate_actions": check the rows are in place.
        self.populated = populated

    # populate_sources: the run's preflight's (tasks.populate.SOURCES),
    # when it has one; optional, as for an embedder's flow.
    def execute(self, populate_sources: Any = None) -> dict:
        found = version_table.read_version(self._database_url)
        expected = [self.target] if self.target else []
        if found != expected:
            raise exceptions.VerifyFailed([
                "alembic_version is %s, expected %s"
                % (", ".join(found) or "empty", self.target or "empty")])
        models = "skipped"
        foreign: list[str] = []
        if self.compare_models and models_available():
            problems, foreign = model_report(self._database_url,
                                             self._cache_dir)
            if foreign:
                LOG.warning("not Mistral's, kept: %s", ", ".join(foreign))
            if problems:
                raise exceptions.VerifyFailed(problems)
            models = "matched"
        result: dict = {"revision": self.target, "models": models}
        if foreign:
            # In the step's detail, so the Run (and --format json)
            # carries the warning to the operator.
            result["warnings"] = ["not Mistral's, kept: %s"
                                  % ", ".join(foreign)]
            result["not_mistrals"] = foreign
        if self.populated:
            from mistral_db_flows import populate

            problems = populate.still_to_do(
                self._database_url,
                workflows=self.populated == "populate",
                loaded=populate_sources)
            if problems:
                raise exceptions.VerifyFailed(problems)
            result["rows"] = "in place"
        return result


def factory(ctx) -> list[task.Task]:
    at_head = ctx.target is not None and ctx.target == ctx.head
    populated = (ctx.operation
                 if ctx.operation in ("populate", "populate_actions")
                 else None)
    cache_dir = (os.path.join(ctx.settings.resolved_state_dir(), "cache")
                 if ctx.settings is not None else None)
    return [Verify(ctx.database_url, ctx.target,
                   compare_models=at_head
                   and ctx.operation in ("upgrade", "verify"),
                   populated=populated, cache_dir=cache_dir)]
