"""A host's own flow around ours, killed inside our steps: through
``engine_guard.guarding`` (the host's engine) and through
``api.run_flow``, ``status`` sees the interrupted run and running the
host's flow again resumes it: the host's first task is not run again,
the database ends at head with upstream's schema."""
from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys

import pytest

from mistral_db_flows import api
from mistral_db_flows import conf
from mistral_db_flows import engine_guard
from mistral_db_flows import exceptions
from tests import migrate_util
from tests.functional import safety_util as su

SCRIPT = pathlib.Path(__file__).with_name("host_flow.py")
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _host_flow(url, tmp_path, how, fault=None):
    env = su.Tool(url, tmp_path).env(fault)
    return subprocess.run(
        [sys.executable, str(SCRIPT), url, str(tmp_path / "state"),
         str(tmp_path / "notes"), how], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=300)


# The quick subset kills one host flow (through the guard); api.run_flow
# and the kill after the step's work run in CI.
@pytest.mark.parametrize("how", [
    "guard", pytest.param("run_flow", marks=pytest.mark.slow)])
@pytest.mark.parametrize("fault", [
    "before:migrate_020:kill",
    # Killed after its work: the re-planned flow lacks migrate_020.
    pytest.param("after:migrate_020:kill", marks=pytest.mark.slow)])
def test_a_killed_host_flow_resumes(how, fault, make_db, tmp_path):
    """Killed before or after migrate_020's work: status names the host
    flow's run and its step; the host's flow run again resumes it
    (host_before not run again) to head with upstream's schema, and no
    interrupted run is left."""
    su.require_fault_plugins()
    url = make_db("sqlite")
    killed = _host_flow(url, tmp_path, how, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    settings = conf.Settings(database_url=url,
                             state_dir=str(tmp_path / "state"))
    interrupted = api.status(settings).interrupted
    assert interrupted["operation"] == "my-upgrade"
    assert interrupted["step"] == "migrate_020"
    again = _host_flow(url, tmp_path, how)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1]) == {
        "resumed": True, "current": ["045"]}
    notes = (tmp_path / "notes").read_text().split()
    assert notes == ["host_before", "host_after"]
    assert migrate_util.schema_diff(url, "045") == []
    status = api.status(settings)
    assert status.interrupted is None
    # Finished: our steps' revert journal is gone with the run.
    assert status.revert_pending == []
    assert not [t for t in migrate_util.rows(
        url, "SELECT name FROM sqlite_master WHERE type = 'table'")
        if t[0].startswith("mdf_revert")]


def test_another_flow_does_not_take_over_an_interrupted_run(make_db,
                                                            tmp_path):
    """An interrupted host run is refused to a flow with other steps
    (exit 12's error), and `abandon` forgets it."""
    su.require_fault_plugins()
    url = make_db("sqlite")
    assert _host_flow(url, tmp_path, "guard",
                      "before:migrate_010:kill").returncode \
        == -signal.SIGKILL
    settings = conf.Settings(database_url=url,
                             state_dir=str(tmp_path / "state"))
    with pytest.raises(exceptions.ResumeRefused) as info:
        with engine_guard.guarding(api.upgrade_flow(settings, "030"),
                                   settings):
            pass
    assert info.value.exit_code == 12
    assert api.abandon(settings)["operation"] == "my-upgrade"
    with engine_guard.guarding(api.upgrade_flow(settings, "030"),
                               settings, target="030") as run:
        run.run(run.load())
        assert not run.resumed
    assert api.current(settings).revisions == ["030"]
    assert api.status(settings).interrupted is None


def test_runs_record_the_target_of_our_flow_inside_a_host_flow(make_db,
                                                               tmp_path):
    """Without target=, run_flow and the guard record the target our
    flow was planned for, found inside the host's parent flow."""
    from taskflow.patterns import linear_flow

    from mistral_db_flows import runs

    url = make_db("sqlite")
    settings = conf.Settings(database_url=url,
                             state_dir=str(tmp_path / "state"))
    parent = linear_flow.Flow("host-upgrade")
    parent.add(api.upgrade_flow(settings, "030"))
    assert runs.planned_target(parent) == "030"
    assert runs.planned_target(linear_flow.Flow("empty")) is None
    assert api.run_flow(parent, settings).target == "030"
    again = linear_flow.Flow("host-upgrade-2")
    again.add(api.upgrade_flow(settings, "head"))
    with engine_guard.guarding(again, settings) as run:
        assert run.flow_detail.meta["plan"]["target"] == "045"
        run.run(run.load())
    assert api.current(settings).revisions == ["045"]
