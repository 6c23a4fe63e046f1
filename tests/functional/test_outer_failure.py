"""A host task after our flow fails (issue 12.4): by default our steps
revert and the database goes back; with revert_on_outer_failure=False it
keeps what our steps did, yet our own failures still revert them."""
from __future__ import annotations

import pytest
from taskflow import engines
from taskflow import task
from taskflow.patterns import linear_flow

from mistral_db_flows import api
from mistral_db_flows import conf
from tests import migrate_util

TARGET = "005"


class HostFails(task.Task):
    def execute(self):
        raise RuntimeError("the host's later task failed")


def _run_host_flow(url, **options):
    settings = conf.Settings(database_url=url)
    host = linear_flow.Flow("host-upgrade").add(
        api.upgrade_flow(settings, TARGET, **options),
        HostFails(name="start_services"))
    with pytest.raises(RuntimeError, match="later task failed"):
        engines.run(host)


def test_by_default_a_later_host_failure_reverts_the_database(make_db):
    url = make_db("sqlite")
    _run_host_flow(url)
    assert migrate_util.version(url) is None


def test_without_revert_on_outer_failure_the_database_stays_upgraded(
        make_db):
    url = make_db("sqlite")
    _run_host_flow(url, revert_on_outer_failure=False)
    assert migrate_util.version(url) == TARGET
    # No undo data is left for a revert nobody will run.
    assert api.status(conf.Settings(database_url=url)).revert_pending == []


def test_without_revert_on_outer_failure_our_own_failure_still_reverts(
        make_db, monkeypatch):
    url = make_db("sqlite")
    monkeypatch.setenv("MDF_FAULT", "before:migrate_004:fail")
    settings = conf.Settings(database_url=url, tasks={"upgrade": [
        "fault_backup", "fault_check_branches", "fault_migrate",
        "fault_verify"]})
    flow = api.upgrade_flow(settings, TARGET, revert_on_outer_failure=False)
    with pytest.raises(Exception, match="migrate_004"):
        engines.run(flow)
    assert migrate_util.version(url) is None
