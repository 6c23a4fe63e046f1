#!/usr/bin/env python3
"""A big Mistral database: ``upgrade head`` (030 -> 045) or ``populate``.

The database is the one issue 10 measured: revision 030 with 20,000
workflow executions and 350,000 task executions whose ``spec`` and
``in_context`` carry about 2.4 KB of random base64 text per row (so
neither TOAST nor a dump's compression makes it small): ~1.1 GB on
PostgreSQL at the default ``--scale 1``.

- PostgreSQL: one seeded template database; every run gets a fresh copy
  (``CREATE DATABASE ... TEMPLATE``), ours and upstream alternating.
- MariaDB: no templates, so one database seeded per run the same way
  (same rows and sizes; only the random texts differ).

Ours runs with its defaults (whatever ``[db_manage] backup`` defaults to)
and a fresh state directory per run; the state directory's growth is
reported against the database's size. Upstream is bench/.upstream-venv's
plain ``mistral-db-manage upgrade head`` (mistral==23.0.0). Every run must
end at 045. Databases are made with tests/dbs.py and dropped at the end.

Usage:
    python3 bench/bench_bigdb.py [--backend postgresql --backend mysql]
        [--runs 2] [--scale 1.0] [--operation upgrade|populate]

Results go to docs/benchmarks.md ("Big database"). Exit status 1 when a
target of issue 10 is missed (ours > 1.5x upstream's median, or state
growth > 10 % of the database).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import bench_startup  # noqa: E402  (venvs of both tools, child env)
import sqlalchemy as sa  # noqa: E402
from tests import dbs  # noqa: E402  (the one place that creates DBs)

WORKFLOWS = 20_000
TASKS = 350_000
BLOBS = 1_000          # distinct random texts, reused round-robin
BLOB_BYTES = 900       # random bytes per blob: 1.2 KB of base64 each
TIME_TARGET = 1.5
POPULATE_TARGET = 0.5
GROWTH_TARGET = 0.10


def _blob_sql(backend: str) -> str:
    # Random bytes as base64: incompressible text, like users' payloads.
    if backend == "postgresql":
        chunks = " || ".join(["decode(md5(random()::text || g), 'hex')"]
                             * (BLOB_BYTES // 16))
        return ("INSERT INTO bench_blob (n, body) SELECT g, "
                "replace(encode(%s, 'base64'), E'\\n', '') "
                "FROM generate_series(0, %d) g" % (chunks, BLOBS - 1))
    return ("INSERT INTO bench_blob (n, body) SELECT seq, "
            "REPLACE(TO_BASE64(RANDOM_BYTES(%d)), '\\n', '') "
            "FROM seq_0_to_%d" % (min(BLOB_BYTES, 1024), BLOBS - 1))


def _series(backend: str, count: int) -> str:
    if backend == "postgresql":
        return "generate_series(1, %d) AS s(g)" % count
    return "(SELECT seq AS g FROM seq_1_to_%d) AS s" % count


def _seed_statements(backend: str, scale: float) -> list[str]:
    wf, tasks = int(WORKFLOWS * scale), int(TASKS * scale)
    pg = backend == "postgresql"
    ts = ("TIMESTAMP '2024-01-01' + g * INTERVAL '1 second'" if pg
          else "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL g SECOND")
    md5 = "md5(%s)" if pg else "MD5(%s)"
    cat = (lambda *p: " || ".join(p)) if pg else \
        (lambda *p: "CONCAT(%s)" % ", ".join(p))
    key = lambda kind: md5 % cat("'%s-'" % kind, "g")  # noqa: E731
    return [
        "CREATE TABLE bench_blob (n INTEGER PRIMARY KEY, body TEXT)",
        _blob_sql(backend),
        "INSERT INTO workflow_executions_v2 (id, created_at, updated_at, "
        "scope, project_id, name, workflow_name, workflow_id, spec, state, "
        "input, output, params, context) "
        "SELECT %s, %s, %s, 'private', 'project', %s, 'wf', 'wf-id', "
        "b.body, 'SUCCESS', '{}', '{}', '{}', '{}' FROM %s "
        "JOIN bench_blob b ON b.n = MOD(g, %d)"
        % (key("wf"), ts, ts, cat("'wf_'", "g"), _series(backend, wf),
           BLOBS),
        "INSERT INTO task_executions_v2 (id, created_at, updated_at, scope, "
        "project_id, name, workflow_name, workflow_id, spec, in_context, "
        "state, workflow_execution_id, processed, published) "
        "SELECT %s, %s, %s, 'private', 'project', %s, 'wf', 'wf-id', "
        "b.body, c.body, 'SUCCESS', %s, %s, '{}' FROM %s "
        "JOIN bench_blob b ON b.n = MOD(g, %d) "
        "JOIN bench_blob c ON c.n = MOD(g * 7 + 3, %d)"
        % (key("task"), ts, ts, cat("'task_'", "g"),
           md5 % cat("'wf-'", "MOD(g, %d) + 1" % wf),
           "TRUE" if pg else "1", _series(backend, tasks), BLOBS, BLOBS),
        "DROP TABLE bench_blob",
    ]


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool,
                            isolation_level="AUTOCOMMIT")


def _migrate(url: str, revision: str) -> None:
    subprocess.run([str(bench_startup.ours_python()), "-c",
                    "import sys\nfrom mistral_db_flows import migration\n"
                    "migration.upgrade(sys.argv[1], sys.argv[2])\n", url,
                    revision], check=True, env=bench_startup.child_env(),
                   # Not the checkout: its source tree would shadow the
                   # installed package (whose migrations live inside it).
                   cwd=tempfile.gettempdir())


def seed(url: str, backend: str, scale: float, operation: str) -> None:
    """Bring a new database to 030 with our chain, then add the rows;
    for ``populate``, then on to head (untimed)."""
    _migrate(url, "030")
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            for statement in _seed_statements(backend, scale):
                conn.execute(sa.text(statement))
            # Fresh statistics: MariaDB's table sizes come from them.
            conn.execute(sa.text(
                "VACUUM ANALYZE" if backend == "postgresql" else
                "ANALYZE TABLE workflow_executions_v2, task_executions_v2"))
    finally:
        engine.dispose()
    if operation == "populate":
        _migrate(url, "head")


def size_of(url: str, backend: str) -> int:
    query = ("SELECT pg_database_size(current_database())"
             if backend == "postgresql" else
             "SELECT SUM(data_length + index_length) FROM "
             "information_schema.tables WHERE table_schema = DATABASE()")
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(query)).scalar() or 0)
    finally:
        engine.dispose()


def revision_of(url: str) -> str:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def copy_pg(template_url: str, workdir: pathlib.Path) -> str:
    url = dbs.create("postgresql", workdir)
    name = sa.engine.make_url(url).database
    dbs.drop(url)
    template = sa.engine.make_url(template_url).database
    admin = _engine(dbs.PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE %s TEMPLATE %s"
                                 % (name, template)))
    finally:
        admin.dispose()
    return url


def dir_size(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_tool(tool: str, url: str, workdir: pathlib.Path,
             operation: str) -> dict:
    state = pathlib.Path(tempfile.mkdtemp(prefix="state-", dir=workdir))
    conf = state / "bench.conf"
    conf.write_text("[database]\nconnection = %s\n[db_manage]\n"
                    "state_dir = %s\n" % (url, state / "state"))
    argv = ([str(bench_startup.ensure_upstream())] if tool == "upstream"
            else [str(bench_startup.ours())])
    argv += ["--config-file", str(conf)] + (
        ["upgrade", "head"] if operation == "upgrade" else ["populate"])
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=state, env=bench_startup.child_env(),
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit("%s failed (%d): %s" % (tool, proc.returncode,
                                         proc.stderr.strip()[-2000:]))
    reached = revision_of(url)
    if reached != "045":  # populate too: it must not move the revision
        sys.exit("%s ended at %s, not 045" % (tool, reached))
    growth = dir_size(state / "state") if (state / "state").exists() else 0
    return {"seconds": elapsed, "state_bytes": growth}


def bench_backend(backend: str, runs: int, scale: float,
                  workdir: pathlib.Path, operation: str) -> dict:
    made: list[str] = []
    try:
        if backend == "postgresql":
            template = dbs.create(backend, workdir)
            made.append(template)
            seed(template, backend, scale, operation)
            db_size = size_of(template, backend)

            def fresh() -> str:
                made.append(copy_pg(template, workdir))
                return made[-1]
        else:
            def fresh() -> str:
                made.append(dbs.create(backend, workdir))
                seed(made[-1], backend, scale, operation)
                return made[-1]
            db_size = 0
        results: dict[str, list[dict]] = {"upstream": [], "ours": []}
        for i in range(runs):
            order = ("ours", "upstream") if i % 2 else ("upstream", "ours")
            for tool in order:
                url = fresh()
                db_size = db_size or size_of(url, backend)
                results[tool].append(run_tool(tool, url, workdir, operation))
                dbs.drop(url)
                made.remove(url)
                print("%s %s run %d: %.1f s" % (
                    backend, tool, i + 1, results[tool][-1]["seconds"]),
                    file=sys.stderr)
        return {"db_size": db_size, "results": results}
    finally:
        for url in made:
            dbs.drop(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append",
                        choices=("postgresql", "mysql"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--operation", choices=("upgrade", "populate"),
                        default="upgrade",
                        help="upgrade: 030 -> head; populate: at head "
                             "(issue 10 measures it at --scale 0.5)")
    args = parser.parse_args()
    target = TIME_TARGET if args.operation == "upgrade" else POPULATE_TARGET
    backends = args.backend or ["postgresql", "mysql"]
    ok = True
    print("| backend | database | upstream | ours (default) | ours / "
          "upstream | state growth / database |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="bench-bigdb-") as tmp:
        for backend in backends:
            found = bench_backend(backend, args.runs, args.scale,
                                  pathlib.Path(tmp), args.operation)
            up = statistics.median(
                r["seconds"] for r in found["results"]["upstream"])
            me = statistics.median(
                r["seconds"] for r in found["results"]["ours"])
            growth = max(r["state_bytes"] for r in found["results"]["ours"])
            share = growth / found["db_size"] if found["db_size"] else 0.0
            ok &= me / up <= target and share <= GROWTH_TARGET
            print("| %s | %.0f MB | %.1f s | %.1f s | %.2fx | %.1f %% |" % (
                backend, found["db_size"] / 1e6, up, me, me / up,
                100 * share))
    print("%s; runs per tool: %d, scale %.2f; medians of wall time"
          % (args.operation, args.runs, args.scale))
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.exit(main())
