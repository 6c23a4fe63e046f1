#!/usr/bin/env python3
"""populate: ours against upstream Mistral 23.0.0, side by side.

For each backend, each run creates fresh databases at head and times,
as separate processes with bytecode present:

- ``upstream``: bench/.upstream-venv's ``mistral-db-manage populate``
  (the venv is created with mistral==23.0.0 when missing);
- ``ours (cli)``: our ``mistral-db-manage populate`` end to end (flow,
  tasks and all). ``wired`` says whether it wrote std.wait_ssh: until
  the populate task calls the library, the CLI only runs the flow;
- ``ours (library)``: ``python -c`` calling
  ``mistral_db_flows.populate.populate(url)``: process start, imports,
  plugin discovery, validation and the writes.

``first`` is the run on an empty head database, ``again`` a second run
on the same database (nothing to change: ours writes nothing). Medians
are printed as a Markdown table; the ratio is upstream / ours.

Usage:
    python3 bench/bench_populate.py [--runs 5]
        [--backend postgresql --backend mysql --backend sqlite]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile

BENCH = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import bench_startup  # noqa: E402  (shared venv/process helpers)

LIBRARY = ("import sys\n"
           "from mistral_db_flows import populate\n"
           "populate.populate(sys.argv[1])\n")


def head_database(backend: str, workdir: pathlib.Path) -> str:
    from mistral_db_flows import migration

    url = bench_startup.make_database(backend, workdir)
    migration.upgrade(url, "head")
    return url


def count_wait_ssh(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT COUNT(*) FROM action_definitions_v2 "
                "WHERE name = 'std.wait_ssh'")).scalar_one()
    finally:
        engine.dispose()


def commands(backend: str) -> dict[str, list[str]]:
    """Each tool's argv, ``{conf}``/``{url}`` filled in per database."""
    tools = {
        "ours (cli)": [str(bench_startup.ours()), "--config-file", "{conf}",
                       "populate"],
        "ours (library)": [str(bench_startup.ours_python()), "-c", LIBRARY, "{url}"],
    }
    if backend in bench_startup.UPSTREAM_BACKENDS:
        tools["upstream"] = [str(bench_startup.ensure_upstream()),
                             "--config-file", "{conf}", "populate"]
    return tools


def one_round(backend: str, argv: list[str],
              workdir: pathlib.Path) -> tuple[float, float, bool]:
    """(first, again, wrote the row) on a fresh head database."""
    url = head_database(backend, workdir)
    try:
        conf = bench_startup.write_conf(url, workdir)
        filled = [a.format(conf=conf, url=url) for a in argv]
        first, _ = bench_startup.run(filled, str(workdir))
        again, _ = bench_startup.run(filled, str(workdir))
        return first, again, count_wait_ssh(url) == 1
    finally:
        bench_startup.dbs_drop(url)


def bench(backend: str, runs: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-populate-") as tmp:
        workdir = pathlib.Path(tmp)
        tools = commands(backend)
        for argv in tools.values():  # warm-up: writes .pyc, fills caches
            one_round(backend, argv, workdir)
        times = {label: ([], [], []) for label in tools}
        for _ in range(runs):
            # Interleaved, so machine load hits every tool alike.
            for label, argv in tools.items():
                first, again, wrote = one_round(backend, argv, workdir)
                times[label][0].append(first)
                times[label][1].append(again)
                times[label][2].append(wrote)
        for label, (first, again, wrote) in times.items():
            rows.append({"backend": backend, "tool": label,
                         "first": statistics.median(first),
                         "again": statistics.median(again),
                         "wired": all(wrote)})
    return rows


def render(rows: list[dict], runs: int) -> str:
    lines = ["runs: %d per cell, median wall time, bytecode present" % runs,
             "",
             "| backend | tool | first run | ratio | second run | ratio "
             "| wrote std.wait_ssh |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    upstream = {(r["backend"]): r for r in rows if r["tool"] == "upstream"}
    for r in rows:
        up = upstream.get(r["backend"])
        ratio = [("%.1fx" % (up[k] / r[k]) if up and r is not up else "")
                 for k in ("first", "again")]
        lines.append("| %s | %s | %.3f s | %s | %.3f s | %s | %s |"
                     % (r["backend"], r["tool"], r["first"], ratio[0],
                        r["again"], ratio[1], "yes" if r["wired"] else "no"))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", action="append",
                        choices=("sqlite", "postgresql", "mysql"))
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    rows = []
    for backend in args.backend or ["postgresql", "mysql", "sqlite"]:
        rows += bench(backend, args.runs)
    print(render(rows, args.runs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    # The target: 3x upstream, for the CLI once it really populates.
    ups = {r["backend"]: r for r in rows if r["tool"] == "upstream"}
    ours = [r for r in rows if r["tool"] != "upstream" and r["wired"]
            and r["backend"] in ups]
    fast = all(ups[r["backend"]]["first"] >= 3 * r["first"] for r in ours)
    return 0 if fast else 1


if __name__ == "__main__":
    sys.exit(main())
