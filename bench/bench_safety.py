#!/usr/bin/env python3
"""What the safety costs: a guarded ``upgrade head`` against upstream's.

For each backend and run, fresh empty databases are upgraded to head by
separate processes (bytecode present), interleaved so machine load hits
every variant alike:

- ``upstream``: bench/.upstream-venv's ``mistral-db-manage upgrade head``
  (plain Alembic; the venv is created with mistral==23.0.0 when missing);
- ``ours``: our ``mistral-db-manage upgrade head`` with everything on:
  lock, backup, a TaskFlow logbook (fresh state directory, so its
  creation is counted), one step per revision, verify;
- ``ours, no backup``: the same with ``--no-backup``;
- ``ours, no verify``: the task list without ``verify``;
- ``other install`` (with ``--other PATH``): another install's
  ``mistral-db-manage`` (e.g. main's), like ``ours``, to compare a
  change side by side under the same load;
- ``alembic only``: ``python -c`` running our revisions in one Alembic
  call (``migration.upgrade(url, "head")``): no lock, logbook, backup,
  steps or verify: the floor for our chain.

Medians are printed as a Markdown table with the ratio upstream / ours
(above 1: we are faster), plus the median of our JSON report's step
durations (backup, all migrate steps, verify) and of the time outside
the steps (start-up, planning, lock, logbook, reporting).
Upstream cannot migrate SQLite past 001, so SQLite has no upstream row.

Usage:
    python3 bench/bench_safety.py [--runs 5]
        [--backend postgresql --backend mysql --backend sqlite]
        [--other /path/to/another/venv/bin/mistral-db-manage]

Exit status 1 when ``ours`` is slower than upstream on a backend.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import bench_startup  # noqa: E402  (shared venv/process helpers)

ALEMBIC_ONLY = ("import sys\n"
                "from mistral_db_flows import migration\n"
                "migration.upgrade(sys.argv[1], 'head')\n")
NO_VERIFY = "backup, check_branches, migrate"


def variants(backend: str, other: str | None = None) -> dict[str, dict]:
    ours = str(bench_startup.ours())
    out = {
        "ours": {"argv": [ours, "--config-file", "{conf}", "--format",
                          "json", "upgrade", "head"]},
        "ours, no backup": {"argv": [ours, "--config-file", "{conf}",
                                     "--format", "json", "upgrade", "head",
                                     "--no-backup"]},
        "ours, no verify": {"argv": [ours, "--config-file", "{conf}",
                                     "--format", "json", "upgrade",
                                     "head"],
                            "tasks": NO_VERIFY},
        "alembic only": {"argv": [str(bench_startup.ours_python()), "-c", ALEMBIC_ONLY,
                                  "{url}"]},
    }
    if other:
        # Another install of ours (e.g. main's, to compare a change
        # side by side), everything on like "ours".
        out["other install"] = {"argv": [other, "--config-file", "{conf}",
                                         "--format", "json", "upgrade",
                                         "head"]}
    if backend in bench_startup.UPSTREAM_BACKENDS:
        out["upstream"] = {"argv": [str(bench_startup.ensure_upstream()),
                                    "--config-file", "{conf}", "upgrade",
                                    "head"]}
    return out


def write_conf(url: str, workdir: pathlib.Path, tasks: str | None) -> str:
    state = tempfile.mkdtemp(prefix="state-", dir=workdir)
    lines = ["[database]", "connection = %s" % url, "[db_manage]",
             "state_dir = %s" % state]
    if tasks:
        lines.append("upgrade_tasks = %s" % tasks)
    path = workdir / "bench-safety.conf"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def one_run(backend: str, variant: dict, workdir: pathlib.Path) -> dict:
    """Time one upgrade head of a fresh empty database."""
    from mistral_db_flows import version_table

    url = bench_startup.make_database(backend, workdir)
    try:
        conf = write_conf(url, workdir, variant.get("tasks"))
        argv = [a.format(conf=conf, url=url) for a in variant["argv"]]
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=str(workdir),
                              env=bench_startup.child_env(),
                              capture_output=True, text=True)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit("%s failed (%d): %s" % (
                argv[0], proc.returncode, proc.stderr[-2000:]))
        if version_table.read_version(url) != ["045"]:
            raise SystemExit("%s did not reach 045" % argv[0])
        row = {"total": took}
        if proc.stdout.strip().startswith("{"):
            steps = json.loads(proc.stdout)["steps"]
            durations = {s["name"]: s["duration"] or 0 for s in steps}
            row["backup"] = durations.get("backup", 0)
            row["verify"] = durations.get("verify", 0)
            row["migrate"] = sum(v for k, v in durations.items()
                                 if k.startswith("migrate_"))
            row["outside"] = took - sum(durations.values())
        return row
    finally:
        bench_startup.dbs_drop(url)


def bench(backend: str, runs: int, other: str | None = None
          ) -> list[dict]:
    tools = variants(backend, other)
    with tempfile.TemporaryDirectory(prefix="bench-safety-") as tmp:
        workdir = pathlib.Path(tmp)
        for variant in tools.values():  # warm-up: .pyc files, caches
            one_run(backend, variant, workdir)
        samples: dict[str, list[dict]] = {label: [] for label in tools}
        for _ in range(runs):
            for label, variant in tools.items():
                samples[label].append(one_run(backend, variant, workdir))
    rows = []
    for label, got in samples.items():
        row = {"backend": backend, "tool": label}
        for key in got[0]:
            row[key] = statistics.median(s[key] for s in got)
        rows.append(row)
    return rows


def render(rows: list[dict], runs: int) -> str:
    lines = ["runs: %d per cell, median wall time of the whole process, "
             "bytecode present" % runs, "",
             "| backend | tool | upgrade head | ratio | backup | migrate "
             "steps | verify | outside steps |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    upstream = {r["backend"]: r for r in rows if r["tool"] == "upstream"}

    def seconds(row: dict, key: str) -> str:
        return "%.2f s" % row[key] if key in row else ""

    for r in rows:
        up = upstream.get(r["backend"])
        ratio = ("%.2fx" % (up["total"] / r["total"])
                 if up and r is not up else "")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["backend"], r["tool"], seconds(r, "total"), ratio,
            seconds(r, "backup"), seconds(r, "migrate"),
            seconds(r, "verify"), seconds(r, "outside")))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5,
                        help="measured runs per variant (after a warm-up)")
    parser.add_argument("--backend", action="append", dest="backends",
                        choices=("sqlite", "postgresql", "mysql"),
                        help="repeatable; default: postgresql and mysql")
    parser.add_argument("--json", type=pathlib.Path,
                        help="also write the rows to this file")
    parser.add_argument("--other", metavar="MISTRAL_DB_MANAGE",
                        help="also time this mistral-db-manage (another "
                             "install of ours, e.g. main's) as 'other "
                             "install'")
    args = parser.parse_args()
    rows = [row for backend in args.backends or ["postgresql", "mysql"]
            for row in bench(backend, args.runs, args.other)]
    print(render(rows, args.runs))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    ups = {r["backend"]: r["total"] for r in rows if r["tool"] == "upstream"}
    slower = [r["backend"] for r in rows if r["tool"] == "ours"
              and r["total"] > ups.get(r["backend"], float("inf"))]
    if slower:
        print("slower than upstream on: %s" % ", ".join(slower),
              file=sys.stderr)
    return 1 if slower else 0


if __name__ == "__main__":
    sys.exit(main())
