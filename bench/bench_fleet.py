#!/usr/bin/env python3
"""Fleet upgrades: N small databases by 2 conductors vs the CLI one
after another (issue 12's benchmark).

Both sides upgrade N empty PostgreSQL databases to head, with the same
shared PostgreSQL logbook and the default safety (lock, backup, verify):

* sequential: ``mistral-db-manage upgrade head`` per database, one
  after another (each run a new process, as a deployment script would);
* fleet: two ``conductor`` processes (started, and idle, before the
  clock starts) and N ``post --wait upgrade head`` processes started at
  once; the clock stops when the last post has exited 0.

Printed: both wall times, their ratio, and the overhead per job: the
conductor time a job costs beyond the CLI's run of it,
(2 x fleet wall - sequential wall) / N (two conductors work at once).
Databases, the logbook and the board's Redis keys are created for the
run and removed at the end, even on failure.

Usage:
    python3 bench/bench_fleet.py [--databases 12] [--repeat 1]

Results are summarised in docs/benchmarks.md ("Fleet").
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from tests import dbs  # noqa: E402  (the one place that creates DBs)

SCRIPT = shutil.which("mistral-db-manage",
                      path=os.path.dirname(sys.executable)) or \
    "mistral-db-manage"
JOBBOARD = "redis://127.0.0.1:6379/0"


def _write(path: pathlib.Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def sequential(urls: list[str], folder: pathlib.Path, logbook: str
               ) -> float:
    start = time.perf_counter()
    for i, url in enumerate(urls):
        config = _write(folder / ("seq-%d.conf" % i),
                        "[database]\nconnection = %s\n[db_manage]\n"
                        "logbook_connection = %s\nstate_dir = %s\n"
                        % (url, logbook, folder / "seq-state"))
        subprocess.run([SCRIPT, "--config-file", config, "upgrade", "head"],
                       check=True, capture_output=True)
    return time.perf_counter() - start


def fleet(urls: list[str], folder: pathlib.Path, logbook: str,
          board: str) -> float:
    targets = folder / "targets"
    targets.mkdir()
    for i, url in enumerate(urls):
        _write(targets / ("t%d.conf" % i), "[database]\nconnection = %s\n"
               % url)
    conductors = []
    for host in ("a", "b"):
        config = _write(folder / ("%s.conf" % host),
                        "[db_manage]\nlogbook_connection = %s\n"
                        "state_dir = %s\n" % (logbook, folder / host))
        conductors.append(subprocess.Popen(
            [SCRIPT, "--config-file", config, "conductor", "--jobboard",
             JOBBOARD, "--board", board, "--targets-dir", str(targets)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    poster = _write(folder / "post.conf",
                    "[db_manage]\nlogbook_connection = %s\n" % logbook)
    try:
        time.sleep(3)  # both conductors up and idle
        start = time.perf_counter()
        posts = [subprocess.Popen(
            [SCRIPT, "--config-file", poster, "post", "--jobboard",
             JOBBOARD, "--board", board, "--target", "t%d" % i, "--wait",
             "upgrade", "head"], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE) for i in range(len(urls))]
        for proc in posts:
            _, err = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise SystemExit("a post failed: %s" % err.decode())
        return time.perf_counter() - start
    finally:
        for proc in conductors:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def _clean_board(board: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    for key in client.scan_iter(match="mistral-db-flows.%s*" % board):
        client.delete(key)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for attempt in range(args.repeat):
        folder = pathlib.Path(tempfile.mkdtemp(prefix="mdf-fleet-bench-"))
        board = "bench-%s" % uuid.uuid4().hex[:10]
        created: list[str] = []
        try:
            logbook = dbs.create("postgresql", folder)
            created.append(logbook)
            seq = [dbs.create("postgresql", folder)
                   for _ in range(args.databases)]
            created += seq
            par = [dbs.create("postgresql", folder)
                   for _ in range(args.databases)]
            created += par
            t_seq = sequential(seq, folder, logbook)
            t_fleet = fleet(par, folder, logbook, board)
        finally:
            _clean_board(board)
            for url in created:
                dbs.drop(url)
            shutil.rmtree(folder, ignore_errors=True)
        n = args.databases
        print("run %d: %d databases: sequential CLI %.1f s, 2 conductors "
              "%.1f s, ratio %.2f, overhead per job %.2f s"
              % (attempt + 1, n, t_seq, t_fleet, t_fleet / t_seq,
                 (2 * t_fleet - t_seq) / n))


if __name__ == "__main__":
    main()
