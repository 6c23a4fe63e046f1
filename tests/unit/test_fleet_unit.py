"""The fleet's parts without Redis or a database: host configuration,
target names, the conductor-ready factory, job outcomes, the jobboard
URL and the claim heartbeat."""
from __future__ import annotations

import json
import threading
import time

import pytest
from oslo_config import cfg

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows.fleet import board
from mistral_db_flows.fleet import factory
from mistral_db_flows.fleet import hosts

SECRET_URL = "postgresql+psycopg2://mistral:s3cr3t-pw@db.example/mistral"


# -- 12.5: a host's own ConfigOpts --------------------------------------------

def _host_opts() -> cfg.ConfigOpts:
    """A host's ConfigOpts with [database] connection registered as
    oslo.db does (its own help and attributes), when oslo.db is there."""
    opts = cfg.ConfigOpts()
    try:
        from oslo_db import options as db_options
    except ImportError:
        opts.register_opt(cfg.StrOpt(
            "connection", secret=True, deprecated_name="sql_connection",
            help="The host's own connection option"), group="database")
    else:
        db_options.set_defaults(opts)
    return opts


def test_register_opts_on_a_host_with_its_own_database_options():
    """Our options go onto a ConfigOpts whose [database] connection the
    host registered differently: no DuplicateOptError, our [db_manage]
    options are there, and the host's connection is what is read."""
    opts = _host_opts()
    with pytest.raises(cfg.DuplicateOptError):
        # What the plain register_opts of both lists would do.
        opts.register_opts(conf.database_opts, group="database")
    conf.register_opts(opts)
    conf.register_opts(opts)  # twice, like every other caller may
    opts([], project="host", default_config_files=[],
         default_config_dirs=[])
    opts.set_override("connection", SECRET_URL, group="database")
    opts.set_override("lock_timeout", 7, group="db_manage")
    settings = conf.settings_from_conf(opts)
    assert settings.database_url == SECRET_URL
    assert settings.lock_timeout == 7
    assert opts.database.connection == SECRET_URL


# -- targets and each host's configuration ------------------------------------

@pytest.mark.parametrize("name", ["region-one", "r1.db", "A_b-2"])
def test_target_names_that_name_a_file(name):
    assert hosts.check_target_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "a..b",
                                  "x" * 200, "with space"])
def test_target_names_that_could_escape_the_directory_are_refused(name):
    with pytest.raises(exceptions.UsageError):
        hosts.check_target_name(name)


def _host(tmp_path, base: str = "", target: str | None = None
          ) -> hosts.Host:
    targets = tmp_path / "targets"
    targets.mkdir(exist_ok=True)
    main = tmp_path / "conductor.conf"
    main.write_text(base)
    if target is not None:
        (targets / "t1.conf").write_text(target)
    return hosts.Host(targets_dir=str(targets), config_files=(str(main),))


def test_settings_for_reads_the_host_config_then_the_target(tmp_path):
    """The conductor's own file gives [db_manage]; the target's file
    gives the connection and wins where both say something."""
    host = _host(tmp_path,
                 "[db_manage]\nlock_timeout = 9\nbackup_keep = 2\n"
                 "[database]\nconnection = sqlite:////not/this\n",
                 "[database]\nconnection = %s\n[db_manage]\n"
                 "backup_keep = 3\n" % SECRET_URL)
    settings = hosts.settings_for(host, "t1")
    assert settings.database_url == SECRET_URL
    assert (settings.lock_timeout, settings.backup_keep) == (9, 3)


def test_settings_for_refuses_unknown_targets_and_no_connection(tmp_path):
    host = _host(tmp_path, "", "[db_manage]\nlock_timeout = 1\n")
    with pytest.raises(exceptions.ConfigError, match="not configured"):
        hosts.settings_for(host, "t2")
    with pytest.raises(exceptions.ConfigError,
                       match="no \\[database\\] connection"):
        hosts.settings_for(host, "t1")


def test_host_round_trips_through_json(tmp_path):
    host = _host(tmp_path)
    assert hosts.Host.from_dict(json.loads(json.dumps(host.to_dict()))) \
        == host


# -- 12.6: the conductor-ready factory ----------------------------------------

def test_factory_details_hold_names_only_and_rebuild_the_flow():
    """save_factory_details records the factory by its import path and
    the job's three JSON values; loading the detail again (as a
    conductor does) rebuilds a flow whose one task needs only the
    host's paths from the store."""
    from taskflow import engines
    from taskflow.persistence import models
    from taskflow.persistence.backends import impl_memory

    backend = impl_memory.MemoryBackend()
    book = models.LogBook("job")
    detail = models.FlowDetail("mistral-db-job", uuid="f1")
    book.add(detail)
    backend.get_connection().save_logbook(book)
    engines.save_factory_details(detail, factory.flow_factory,
                                 ["region-one", "upgrade", "head"], {},
                                 backend=backend)
    recorded = json.dumps(detail.meta)
    assert json.loads(recorded)["factory"] == {
        "name": "mistral_db_flows.fleet.factory.flow_factory",
        "args": ["region-one", "upgrade", "head"], "kwargs": {}}
    flow = engines.flow_from_detail(detail)
    (task,) = [node for node, _ in flow.iter_nodes()]
    assert isinstance(task, factory.RunJob)
    assert task.name == "upgrade_region-one"
    assert set(task.requires) == {factory.HOST_KEY}


@pytest.mark.parametrize("args", [("bad/name", "verify", None),
                                  ("t", "drop", None), ("t", "upgrade", None),
                                  ("t", "stamp", ""), ("t", "verify", "x")])
def test_factory_refuses_a_bad_job(args):
    with pytest.raises(exceptions.UsageError):
        factory.flow_factory(*args)


def test_run_job_gives_the_commands_exit_code_as_its_outcome(tmp_path):
    """A job whose target this host does not know ends with the
    configuration error's code (2), not an exception: the conductor
    consumes it and post --wait exits 2."""
    task = factory.RunJob("t9", "verify", None)
    done = task.execute(_host(tmp_path).to_dict())
    assert done["exit_code"] == 2
    assert done["error"]["type"] == "ConfigError"
    json.dumps(done)


def test_outcome_masks_passwords_and_keeps_codes():
    lost = exceptions.DatabaseUnreachable("postgresql://m:***@h/d",
                                          "refused")
    doc = factory.outcome("t", error=lost)
    assert doc["exit_code"] == 3
    boom = RuntimeError("cannot use %s" % SECRET_URL)
    doc = factory.outcome("t", error=boom, known_urls=(SECRET_URL,))
    assert doc["exit_code"] == 1
    assert "s3cr3t-pw" not in json.dumps(doc)


def test_job_failed_takes_the_remote_code():
    assert exceptions.JobFailed("j", "t", "upgrade", "x", 4).exit_code == 4
    assert exceptions.JobFailed("j", "t", "upgrade", "x", 77).exit_code \
        == exceptions.ExitCode.ERROR


# -- the jobboard URL ---------------------------------------------------------

def test_board_conf_from_a_redis_url():
    got = board.board_conf("redis://:pw%40x@10.0.0.5:6380/3", "fleet-a")
    assert got["host"] == "10.0.0.5" and got["port"] == 6380
    assert got["db"] == 3 and got["password"] == "pw@x"
    assert got["namespace"] == "mistral-db-flows.fleet-a"
    assert board.board_conf("redis://h", "b")["port"] == 6379


@pytest.mark.parametrize("url, name", [
    ("http://h:1/0", "b"), ("redis:///0", "b"), ("redis://h:1/x", "b"),
    ("redis://h:1/0", ""), ("redis://h:1/0", "a b"),
    ("redis://h:1/0", "a:b")])
def test_bad_jobboard_urls_and_board_names(url, name):
    with pytest.raises(exceptions.UsageError):
        board.board_conf(url, name)


# -- the heartbeat ------------------------------------------------------------

class _Job:
    uuid = "job-1"

    def __init__(self, answers=None):
        self.calls: list[float] = []
        self.answers = list(answers or [])

    def extend_expiry(self, expiry):
        self.calls.append(expiry)
        return self.answers.pop(0) if self.answers else True


def test_heartbeat_extends_the_claim_while_the_body_runs():
    """Every interval while the body runs (a long step says nothing to
    the engine), with the full expiry; nothing after the body."""
    from mistral_db_flows.fleet import conductor

    job = _Job()
    with conductor.heartbeat(job, 3.0, interval=0.05) as lost:
        time.sleep(0.4)
    count = len(job.calls)
    assert count >= 4 and set(job.calls) == {3.0}
    assert not lost.is_set()
    time.sleep(0.15)
    assert len(job.calls) == count
    assert not [t for t in threading.enumerate()
                if t.name.startswith("claim-heartbeat")]


def test_heartbeat_says_when_the_claim_is_gone():
    from mistral_db_flows.fleet import conductor

    job = _Job(answers=[True, False])
    with conductor.heartbeat(job, 1.0, interval=0.02) as lost:
        assert lost.wait(2)
    assert len(job.calls) == 2


# -- the commands' input, before anything is contacted ------------------------

def _main(tmp_path, capsys, config: str, *argv: str):
    from mistral_db_flows import cli

    path = tmp_path / "c.conf"
    path.write_text(config)
    code = cli.main(["--config-file", str(path), *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("config, argv, says", [
    ("", ("post", "--jobboard", "redis://127.0.0.1:1/0", "--board", "b",
          "--target", "t", "verify"), "logbook_connection"),
    ("[db_manage]\nlogbook_connection = sqlite:////nowhere/x\n",
     ("post", "--jobboard", "redis://127.0.0.1:1/0", "--board", "b",
      "--target", "../t", "verify"), "target '../t'"),
    ("[db_manage]\nlogbook_connection = sqlite:////nowhere/x\n",
     ("post", "--jobboard", "http://h/0", "--board", "b", "--target", "t",
      "verify"), "redis://HOST:PORT/DB"),
    ("", ("conductor", "--jobboard", "redis://127.0.0.1:1/0", "--board",
          "b", "--targets-dir", "/nonexistent-dir"), "not a directory"),
])
def test_fleet_commands_refuse_bad_input_with_2(tmp_path, capsys, config,
                                                argv, says):
    code, err = _main(tmp_path, capsys, config, *argv)
    assert code == 2, err
    assert says in err and err.count("\n") == 1
