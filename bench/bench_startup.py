#!/usr/bin/env python3
"""Start-up time of our mistral-db-manage against upstream's, side by side.

Runs ``--help`` and ``current`` of both tools N times each, interleaved,
on the same database at head, and prints the median wall time of each and
the ratio upstream/ours. Upstream (mistral==23.0.0) lives in its own
virtualenv, bench/.upstream-venv, created here when missing.

Usage:
    python3 bench/bench_startup.py [--runs 15] [--backend sqlite|postgresql]

Ours runs from bench/.ours-venv, a plain ``pip install`` of this checkout
(refreshed each run; ``MDF_BENCH_DEV=1`` uses the running interpreter's
install instead), so that both tools are installed the way operators
install them.

Bytecode: PYTHONDONTWRITEBYTECODE is removed from the children's
environment and each command runs once unmeasured first, so both tools are
timed with their .pyc files present, as after a normal install.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent
UPSTREAM_VENV = BENCH / ".upstream-venv"
UPSTREAM = UPSTREAM_VENV / "bin" / "mistral-db-manage"
UPSTREAM_PACKAGES = ["mistral==23.0.0", "psycopg2-binary", "PyMySQL"]
# Upstream cannot migrate SQLite past 002, so it has no SQLite column.
UPSTREAM_BACKENDS = ("postgresql", "mysql")


def ensure_upstream() -> pathlib.Path:
    if UPSTREAM.exists():
        return UPSTREAM
    print("creating %s with %s" % (UPSTREAM_VENV, " ".join(UPSTREAM_PACKAGES)),
          file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(UPSTREAM_VENV)],
                   check=True)
    subprocess.run([str(UPSTREAM_VENV / "bin" / "pip"), "install", "-q"]
                   + UPSTREAM_PACKAGES, check=True)
    return UPSTREAM


OURS_VENV = BENCH / ".ours-venv"
# The drivers are not our dependencies (operators pick them); upstream's
# venv gets the same two.
OURS_DRIVERS = ["psycopg2-binary", "PyMySQL"]
_refreshed: list[bool] = []


def ours_python() -> pathlib.Path:
    """Python of a venv holding a plain (non-editable) install of this
    checkout, as an operator installs it: no editable-import hooks, no
    test plugins (which add pre-installed workflows to populate).
    Reinstalled from the checkout once per bench process.
    ``MDF_BENCH_DEV=1`` uses the interpreter running the bench instead.
    """
    if os.environ.get("MDF_BENCH_DEV"):
        return pathlib.Path(sys.executable)
    python = OURS_VENV / "bin" / "python"
    pip = [str(OURS_VENV / "bin" / "pip"), "install", "-q"]
    if not python.exists():
        print("creating %s with this checkout" % OURS_VENV, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(OURS_VENV)],
                       check=True)
        subprocess.run(pip + [str(ROOT)] + OURS_DRIVERS, check=True)
        _refreshed.append(True)
    if not _refreshed:
        subprocess.run(pip + ["--no-deps", "--force-reinstall", str(ROOT)],
                       check=True)
        _refreshed.append(True)
    return python


def ours() -> pathlib.Path:
    """Our console script (see ``ours_python`` for where it lives)."""
    script = ours_python().parent / "mistral-db-manage"
    if script.exists():
        return script
    found = shutil.which("mistral-db-manage")
    if not found or pathlib.Path(found).resolve() == UPSTREAM.resolve():
        sys.exit("install mistral-db-flows first (pip install -e .)")
    return pathlib.Path(found)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run(argv: list[str], cwd: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=child_env(),
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(argv), proc.returncode,
                                         proc.stderr.strip()[-2000:]))
    return elapsed, proc.stdout


def make_database(backend: str, workdir: pathlib.Path) -> str:
    sys.path.insert(0, str(ROOT))
    from tests import dbs  # the one place that creates test databases

    return dbs.create(backend, workdir)


def write_conf(url: str, workdir: pathlib.Path) -> str:
    path = workdir / "bench.conf"
    path.write_text("[database]\nconnection = %s\n" % url)
    return str(path)


def bench(runs: int, backend: str) -> int:
    upstream, mine = ensure_upstream(), ours()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        workdir = pathlib.Path(tmp)
        url = make_database(backend, workdir)
        try:
            conf = write_conf(url, workdir)
            run([str(mine), "--config-file", conf, "upgrade", "head"], tmp)
            cases = {"--help": ["--help"],
                     "current": ["--config-file", conf, "current"]}
            rows = []
            for name, args in cases.items():
                times: dict[str, list[float]] = {"upstream": [], "ours": []}
                outputs = {}
                tools = {"upstream": upstream, "ours": mine}
                for label, tool in tools.items():  # warm-up: writes .pyc
                    _, outputs[label] = run([str(tool)] + args, tmp)
                if name == "current" and (outputs["upstream"].strip()
                                          != outputs["ours"].strip()):
                    sys.exit("outputs differ: %r vs %r"
                             % (outputs["upstream"], outputs["ours"]))
                for _ in range(runs):
                    for label, tool in tools.items():
                        times[label].append(run([str(tool)] + args, tmp)[0])
                up = statistics.median(times["upstream"])
                me = statistics.median(times["ours"])
                rows.append((name, up, me, up / me))
        finally:
            dbs_drop(url)
    print("backend: %s, runs: %d (median wall time, bytecode present)"
          % (backend, runs))
    print("| command | upstream 23.0.0 | mistral-db-flows | ratio |")
    print("| --- | --- | --- | --- |")
    for name, up, me, ratio in rows:
        print("| `%s` | %.3f s | %.3f s | %.1fx |" % (name, up, me, ratio))
    return 0 if all(ratio >= 5 for *_, ratio in rows) else 1


def dbs_drop(url: str) -> None:
    from tests import dbs

    dbs.drop(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--backend", default="sqlite",
                        choices=("sqlite", "postgresql", "mysql"))
    args = parser.parse_args()
    return bench(args.runs, args.backend)


if __name__ == "__main__":
    sys.exit(main())
