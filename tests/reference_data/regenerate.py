#!/usr/bin/env python3
"""Re-take upstream Mistral's reference facts into this folder.

Every fact comes from upstream Mistral 23.0.0 itself, run on fresh
databases of the test servers (``tests/dbs.py``); our
``mistral_db_flows.schema_dump`` describes the resulting schemas:

- revisions: upstream's ``mistral-db-manage upgrade NNN`` for every
  revision, on PostgreSQL and MariaDB: ``schema_by_rev/<pg|mysql>/NNN.json``
  and, after ``upgrade head``, ``schema_head_<pg|mysql>.json``;
- models: upstream's ``MistralModelBase.metadata.create_all()`` on SQLite,
  PostgreSQL and MariaDB: ``schema_models_<sqlite|pg|mysql>.json``;
- populate: upstream's ``upgrade head`` then ``populate`` on PostgreSQL,
  the rows of ``action_definitions_v2`` and ``workflow_definitions_v2``
  without ids and timestamps: ``populate/upstream_populate.json``, or
  ``populate/upstream_populate_with_mistral_extra.json`` when upstream's
  virtualenv also has ``mistral-extra``;
- data022: upstream's ``upgrade 021``, ``SEED_022``'s rows, then
  ``upgrade 022``, on PostgreSQL and MariaDB: the seed and each row's new
  namespace column, ``upstream_022_data.json``.

Usage (from the repository root, with this checkout installed; README.md
beside this file says how to make upstream's virtualenv):
    python3 tests/reference_data/regenerate.py \\
        --upstream VENV/bin/mistral-db-manage [--check] \\
        [--only revisions,models,populate,data022] [--revisions 001,045]

``--check`` compares with the stored files instead of writing them and
exits 1 on any difference.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import subprocess
import sys
import tempfile
from typing import Any, Callable, Iterator

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from mistral_db_flows import schema_dump  # noqa: E402
from tests import dbs  # noqa: E402
from tests import reference  # noqa: E402

DIALECTS = {"sqlite": "sqlite", "postgresql": "pg", "mysql": "mysql"}
SERVERS = ("postgresql", "mysql")
POPULATED = ("action_definitions_v2", "workflow_definitions_v2")

# Run by upstream's interpreter: its models, created on the URL given.
CREATE_ALL = (
    "import sys\n"
    "import sqlalchemy as sa\n"
    "from mistral.db.sqlalchemy import model_base\n"
    "from mistral.db.v2.sqlalchemy import models  # noqa: F401\n"
    "engine = sa.create_engine(sys.argv[1])\n"
    "model_base.MistralModelBase.metadata.create_all(engine)\n")
HAS_EXTRA = ("import importlib.util, sys\n"
             "sys.exit(importlib.util.find_spec('mistral_extra') is None)\n")


def _text(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


class Upstream:
    """Upstream's tool and interpreter, run on throw-away databases."""

    def __init__(self, tool: str, workdir: pathlib.Path):
        self.tool = tool
        self.python = str(pathlib.Path(tool).parent / "python")
        self.workdir = workdir

    def _conf(self, url: str) -> str:
        conf = self.workdir / "mistral.conf"
        conf.write_text("[database]\nconnection = %s\n" % url)
        return str(conf)

    def manage(self, url: str, *argv: str) -> None:
        subprocess.run([self.tool, "--config-file", self._conf(url)]
                       + list(argv), check=True, capture_output=True)

    def run_python(self, code: str, *argv: str) -> int:
        return subprocess.run([self.python, "-c", code] + list(argv),
                              capture_output=True).returncode

    def on_fresh(self, backend: str, prepare: Callable[[str], None],
                 read: Callable[[str], dict]) -> str:
        url = dbs.create(backend, self.workdir)
        try:
            prepare(url)
            return _text(read(url))
        finally:
            dbs.drop(url)


def _revisions(up: Upstream, revisions: list[str]) -> Iterator[tuple]:
    for backend in SERVERS:
        dialect = DIALECTS[backend]
        targets = [(r, "schema_by_rev/%s/%s.json" % (dialect, r))
                   for r in revisions]
        if reference.HEAD in revisions:
            targets.append(("head", "schema_head_%s.json" % dialect))
        for target, name in targets:
            def upgrade(url: str, target: str = target) -> None:
                up.manage(url, "upgrade", target)
            yield name, up.on_fresh(backend, upgrade, schema_dump.dump_url)


def _models(up: Upstream, revisions: list[str]) -> Iterator[tuple]:
    for backend, dialect in DIALECTS.items():
        def create_all(url: str) -> None:
            if up.run_python(CREATE_ALL, url) != 0:
                raise SystemExit("upstream's create_all failed on " + url)
        yield ("schema_models_%s.json" % dialect,
               up.on_fresh(backend, create_all, schema_dump.dump_url))


@contextlib.contextmanager
def _transaction(url: str) -> Iterator[Any]:
    """A connection in one transaction, committed on success."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _rows(url: str) -> dict:
    import sqlalchemy as sa

    out = {}
    with _transaction(url) as conn:
        for table in POPULATED:
            rows = [dict(r._mapping) for r in conn.execute(sa.text(
                "SELECT * FROM %s ORDER BY name" % table))]
            for row in rows:
                for volatile in ("id", "created_at", "updated_at"):
                    row.pop(volatile, None)
            out[table] = rows
    return out


def _populate(up: Upstream, revisions: list[str]) -> Iterator[tuple]:
    extra = up.run_python(HAS_EXTRA) == 0
    name = "populate/upstream_populate%s.json" % (
        "_with_mistral_extra" if extra else "")

    def upgrade_and_populate(url: str) -> None:
        up.manage(url, "upgrade", "head")
        up.manage(url, "populate")
    yield name, up.on_fresh("postgresql", upgrade_and_populate, _rows)


# 022's data: rows seeded at 021 in every table 022 fills, one per case
# its data step tells apart (action executions by workflow_name).
SEED_022 = {
    "workflow_definitions_v2": [
        {"id": "wd-1", "name": "wf1", "project_id": "p1"},
        {"id": "wd-2", "name": "wf2", "project_id": None}],
    "workflow_executions_v2": [
        {"id": "we-1", "workflow_name": "wf1"},
        {"id": "we-2", "workflow_name": None}],
    "task_executions_v2": [
        {"id": "te-1", "workflow_name": "wf1"},
        {"id": "te-2", "workflow_name": None}],
    "action_executions_v2": [
        {"id": "ae-named", "workflow_name": "wf1"},
        {"id": "ae-null", "workflow_name": None},
        {"id": "ae-empty", "workflow_name": ""},
        {"id": "ae-space", "workflow_name": " "},
        {"id": "ae-zero", "workflow_name": "0"}],
}
# The column 022 adds to each table.
COLUMNS_022 = {"workflow_definitions_v2": "namespace",
               "workflow_executions_v2": "workflow_namespace",
               "task_executions_v2": "workflow_namespace",
               "action_executions_v2": "workflow_namespace"}


def seed_022(url: str) -> None:
    """Insert SEED_022 (the database must be at 021)."""
    import sqlalchemy as sa

    with _transaction(url) as conn:
        for table, rows in SEED_022.items():
            names = list(rows[0])
            conn.execute(sa.text("INSERT INTO %s (%s) VALUES (%s)" % (
                table, ", ".join(names),
                ", ".join(":" + n for n in names))), rows)


def namespaces_022(url: str) -> dict:
    """Each table's ids mapped to the column 022 added."""
    import sqlalchemy as sa

    with _transaction(url) as conn:
        return {table: dict(conn.execute(sa.text(
            "SELECT id, %s FROM %s" % (column, table))).all())
            for table, column in COLUMNS_022.items()}


def _data_022(up: Upstream, revisions: list[str]) -> Iterator[tuple]:
    after = {}
    for backend in SERVERS:
        def upgrade(url: str) -> None:
            up.manage(url, "upgrade", "021")
            seed_022(url)
            up.manage(url, "upgrade", "022")
        after[backend] = json.loads(up.on_fresh(backend, upgrade,
                                                namespaces_022))
    yield "upstream_022_data.json", _text({"seed": SEED_022,
                                           "after": after})


PARTS = {"revisions": _revisions, "models": _models, "populate": _populate,
         "data022": _data_022}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True,
                        help="upstream Mistral 23.0.0's mistral-db-manage")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--only", default=",".join(PARTS))
    parser.add_argument("--revisions", default=",".join(reference.REVISIONS))
    args = parser.parse_args(argv)
    revisions = [r for r in args.revisions.split(",") if r]
    differ = []
    with tempfile.TemporaryDirectory() as tmp:
        up = Upstream(args.upstream, pathlib.Path(tmp))
        for part in args.only.split(","):
            for name, text in PARTS[part](up, revisions):
                path = HERE / name
                same = path.exists() and path.read_text() == text
                if not args.check:
                    path.write_text(text)
                elif not same:
                    differ.append(name)
                print("%s %s" % (name, "same" if same else "differs"),
                      flush=True)
    if differ:
        print("differ: %s" % " ".join(differ), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
