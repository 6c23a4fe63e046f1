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
