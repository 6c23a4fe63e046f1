"""Several databases in one process: threads, and namespaced flows
composed in one parent flow on TaskFlow's parallel engine (issue 12).

Each database must end at head with upstream's exact schema: a run that
sent its statements to another database's connection would leave one
schema short and another with duplicate columns.
"""
from __future__ import annotations

import threading

import pytest

from mistral_db_flows import api
from mistral_db_flows import conf
from mistral_db_flows import results
from tests import migrate_util
from tests import reference

pytestmark = [pytest.mark.postgresql]


def test_three_threads_upgrade_three_databases_in_isolation(make_db):
    urls = [make_db("postgresql") for _ in range(3)]
    outcomes: dict[str, object] = {}
    start = threading.Barrier(len(urls))

    def upgrade(url: str) -> None:
        start.wait()
        try:
            outcomes[url] = api.upgrade(conf.Settings(database_url=url),
                                        "head")
        except BaseException as exc:  # reported below, per database
            outcomes[url] = exc

    threads = [threading.Thread(target=upgrade, args=(url,))
               for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for url in urls:
        run = outcomes[url]
        assert not isinstance(run, BaseException), run
        assert run.state == results.Outcome.UPGRADED, run.lines()
        assert run.end_revision == reference.HEAD
        assert migrate_util.version(url) == reference.HEAD
        assert migrate_util.schema_diff(url, reference.HEAD) == []


def test_namespaced_flows_of_two_databases_run_on_the_parallel_engine(
        make_db):
    from taskflow import engines
    from taskflow.patterns import unordered_flow

    urls = [make_db("postgresql") for _ in range(2)]
    parent = unordered_flow.Flow("host-fleet")
    for n, url in enumerate(urls):
        parent.add(api.upgrade_flow(conf.Settings(database_url=url),
                                    "head", prefix="db%d." % n))
    engine = engines.load(parent, engine="parallel", max_workers=2)
    engine.run()
    for n, url in enumerate(urls):
        assert engine.storage.get_atom_state("db%d.migrate_045" % n) \
            == "SUCCESS"
        assert migrate_util.version(url) == reference.HEAD
        assert migrate_util.schema_diff(url, reference.HEAD) == []
