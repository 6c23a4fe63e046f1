"""Backup + restore of a >= 1 GB database: ours against the tools by hand.

For PostgreSQL and MariaDB: build a database of at least ``--size-gb``
(a task_executions_v2-like table filled server-side), then time

* ours: ``backup.take`` then ``backup.restore`` (which also drops
  objects created since and, on PostgreSQL, runs in one transaction);
* by hand: ``pg_dump -Fc`` + ``pg_restore --clean --if-exists -d``, or
  ``mariadb-dump --single-transaction`` + ``mariadb < dump``;

check the data survived, print the best times of ``--repeat`` rounds
(who goes first alternates) and their ratios, and drop the database. Run from the repository root:

    python3 bench/bench_backup.py [--backends postgresql mysql]
                                  [--size-gb 1.0] [--repeat 2]
                                  [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from mistral_db_flows import backup  # noqa: E402
from mistral_db_flows.backup import mysql as mysql_backup  # noqa: E402
from mistral_db_flows.backup import postgresql as pg_backup  # noqa: E402
from tests import dbs  # noqa: E402

ROWS_PER_BATCH = 200_000

_PG_TABLE = """
CREATE TABLE task_executions_v2 (
    id VARCHAR(36) PRIMARY KEY,
    workflow_execution_id VARCHAR(36),
    name VARCHAR(255),
    state VARCHAR(20),
    state_info TEXT,
    spec TEXT,
    published TEXT,
    in_context TEXT,
    processed BOOLEAN,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
)
"""
_MYSQL_TABLE = _PG_TABLE.replace("in_context TEXT", "in_context LONGTEXT") \
    + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
_INDEX = ("CREATE INDEX task_executions_v2_wf_ex_id "
          "ON task_executions_v2 (workflow_execution_id)")

# About 1 KB a row of JSON/YAML-like text: repetitive structure with
# unique hashes, so it compresses roughly like Mistral's own columns.
_PG_FILL = """
INSERT INTO task_executions_v2
SELECT md5(i::text || 'id'), md5((i / 20)::text),
       'task_' || (i % 50), (ARRAY['SUCCESS', 'ERROR', 'RUNNING'])[i % 3 + 1],
       CASE WHEN i % 3 = 1 THEN 'Failed: ' || md5(i::text) END,
       '{"version": "2.0", "name": "task_' || (i % 50) ||
         '", "action": "std.http", "input": {"url": "http://h/' ||
         md5(i::text || 'u') || '"}, "publish": {"result": ' ||
         '"<% task().result %>"}, "retry": {"count": 3, "delay": 10}}',
       '{"result": "' || md5(i::text || 'a') || md5(i::text || 'b') ||
         '", "status_code": 200, "headers": {"x-id": "' ||
         md5(i::text || 'c') || '"}}',
       '{"openstack": {"auth_token": "' || md5(i::text || 'd') ||
         md5(i::text || 'e') || '", "project_id": "' ||
         md5((i % 7)::text) || '", "service_catalog": "' ||
         repeat(md5((i % 100)::text), 4) || '"}, "__execution": {"id": "'
         || md5((i / 20)::text) || '"}}',
       i % 2 = 0, now(), now()
FROM generate_series(:first, :last) AS i
"""
_MYSQL_FILL = """
INSERT INTO task_executions_v2
SELECT md5(concat(seq, 'id')), md5(seq DIV 20),
       concat('task_', seq MOD 50),
       elt(seq MOD 3 + 1, 'SUCCESS', 'ERROR', 'RUNNING'),
       IF(seq MOD 3 = 1, concat('Failed: ', md5(seq)), NULL),
       concat('{"version": "2.0", "name": "task_', seq MOD 50,
              '", "action": "std.http", "input": {"url": "http://h/',
              md5(concat(seq, 'u')), '"}, "publish": {"result": ',
              '"<% task().result %>"}, "retry": {"count": 3, ',
              '"delay": 10}}'),
       concat('{"result": "', md5(concat(seq, 'a')), md5(concat(seq, 'b')),
              '", "status_code": 200, "headers": {"x-id": "',
              md5(concat(seq, 'c')), '"}}'),
       concat('{"openstack": {"auth_token": "', md5(concat(seq, 'd')),
              md5(concat(seq, 'e')), '", "project_id": "', md5(seq MOD 7),
              '", "service_catalog": "', repeat(md5(seq MOD 100), 4),
              '"}, "__execution": {"id": "', md5(seq DIV 20), '"}}'),
       seq MOD 2 = 0, now(), now()
FROM seq_{first}_to_{last}
"""
_PG_SIZE = "SELECT pg_database_size(current_database())"
_MYSQL_SIZE = ("SELECT SUM(data_length + index_length) FROM "
               "information_schema.tables WHERE table_schema = DATABASE()")
_FINGERPRINT = ("SELECT count(*), sum(length(in_context)), "
                "max(id), min(published) FROM task_executions_v2")


def build(url: str, kind: str, size: int) -> int:
    """Fill the database server-side until it holds ``size`` bytes."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    first = 1
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(_PG_TABLE if kind == "postgresql"
                                 else _MYSQL_TABLE))
            conn.execute(sa.text(_INDEX))
        while True:
            last = first + ROWS_PER_BATCH - 1
            with engine.begin() as conn:
                if kind == "postgresql":
                    conn.execute(sa.text(_PG_FILL),
                                 {"first": first, "last": last})
                else:
                    conn.exec_driver_sql(_MYSQL_FILL.replace(
                        "{first}", str(first)).replace("{last}", str(last))
                        .replace("%", "%%"))
            first = last + 1
            with engine.begin() as conn:
                if kind == "postgresql":
                    conn.exec_driver_sql("ANALYZE task_executions_v2")
                    current = conn.execute(sa.text(_PG_SIZE)).scalar()
                else:
                    conn.exec_driver_sql("ANALYZE TABLE task_executions_v2")
                    current = conn.execute(sa.text(_MYSQL_SIZE)).scalar()
            current = int(current or 0)
            print("  %s: %d rows, %.2f GB" % (kind, first - 1,
                                               current / 1e9), flush=True)
            if current >= size:
                return int(current)
    finally:
        engine.dispose()


def fingerprint(url: str) -> tuple:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(_FINGERPRINT)).one())
    finally:
        engine.dispose()


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _shell(argv: list, env: dict, stdin=None, stdout=None) -> None:
    subprocess.run(argv, env=env, stdin=stdin, stdout=stdout, check=True)


def by_hand(url: str, kind: str, directory: str) -> dict:
    """The backend's own tools, as an operator would run them."""
    u = sa.engine.make_url(url)
    path = os.path.join(directory, "by-hand.dump")
    if kind == "postgresql":
        env = pg_backup.environment(u)
        dump = _timed(lambda: _shell(
            ["pg_dump", "-Fc", "-f", path], env))
        restore = _timed(lambda: _shell(
            ["pg_restore", "--clean", "--if-exists", "-d", u.database,
             path], env))
    else:
        env = dict(os.environ)
        with mysql_backup.option_file(u) as options, \
                open(path, "wb") as out:
            dump = _timed(lambda: _shell(
                ["mariadb-dump", "--defaults-extra-file=" + options,
                 "--single-transaction", u.database], env, stdout=out))
        with mysql_backup.option_file(u) as options, \
                open(path, "rb") as source:
            restore = _timed(lambda: _shell(
                ["mariadb", "--defaults-extra-file=" + options,
                 u.database], env, stdin=source))
    size = os.path.getsize(path)
    os.unlink(path)
    return {"dump": dump, "restore": restore, "file": size}


def ours(url: str, directory: str) -> dict:
    taken = {}
    dump = _timed(lambda: taken.update(
        backup.take(url, directory, label="bench")))
    restore = _timed(lambda: backup.restore(url, taken))
    os.unlink(taken["path"])
    return {"dump": dump, "restore": restore, "file": taken["size"]}


def _best(runs: list) -> dict:
    return {key: min(run[key] for run in runs) for key in runs[0]}


def bench(kind: str, size_gb: float, directory: str, repeat: int) -> dict:
    """Alternate by-hand and ours ``repeat`` times; keep each best time
    (the first runs also warm the caches)."""
    url = dbs.create(kind, pathlib.Path(directory))
    try:
        print("%s: building %.1f GB..." % (kind, size_gb), flush=True)
        started = time.perf_counter()
        built = build(url, kind, int(size_gb * 1e9))
        print("  built in %.0f s" % (time.perf_counter() - started))
        expected = fingerprint(url)
        hands, mines = [], []
        for round_ in range(repeat):
            # Alternate who goes first: a load leaves the server flushing
            # dirty pages for a while, which slows whatever comes next.
            order = [("by hand", lambda: by_hand(url, kind, directory),
                      hands),
                     ("ours", lambda: ours(url, directory), mines)]
            for name, run, runs in order[::1 if round_ % 2 == 0 else -1]:
                runs.append(run())
                assert fingerprint(url) == expected, \
                    "%s restore lost data" % name
                print("  %s: %s" % (name, runs[-1]), flush=True)
        hand, mine = _best(hands), _best(mines)
    finally:
        dbs.drop(url)
    result = {"backend": kind, "database_bytes": built, "rows":
              expected[0], "by_hand": hand, "ours": mine}
    report(result)
    return result


def report(r: dict) -> None:
    hand, mine = r["by_hand"], r["ours"]
    print("%s: %.2f GB, %d rows" % (r["backend"], r["database_bytes"] / 1e9,
                                    r["rows"]))
    for step in ("dump", "restore"):
        print("  %-8s by hand %7.1f s   ours %7.1f s   ratio %.2f"
              % (step, hand[step], mine[step], mine[step] / hand[step]))
    total_hand = hand["dump"] + hand["restore"]
    total_mine = mine["dump"] + mine["restore"]
    print("  %-8s by hand %7.1f s   ours %7.1f s   ratio %.2f"
          % ("total", total_hand, total_mine, total_mine / total_hand))
    print("  file     by hand %7.0f MB  ours %7.0f MB"
          % (hand["file"] / 1e6, mine["file"] / 1e6), flush=True)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+",
                        default=["postgresql", "mysql"],
                        choices=["postgresql", "mysql"])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--dir", default=None,
                        help="where dumps go (default: a temporary "
                             "directory)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    # Dropping the big databases is in ``finally`` blocks: make a plain
    # kill run them too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        results = [bench(kind, args.size_gb, directory, args.repeat)
                   for kind in args.backends]
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
