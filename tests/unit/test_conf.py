"""Options, Settings and the generated sample config, without a database."""
from __future__ import annotations

import os
import pathlib

import pytest
from oslo_config import cfg
from oslo_config import generator

from mistral_db_flows import conf

ROOT = pathlib.Path(__file__).resolve().parents[2]
GENERATOR_CONF = ROOT / "etc" / "oslo-config-generator" / \
    "mistral-db-flows.conf"
SAMPLE = ROOT / "etc" / "mistral-db-flows.conf.sample"


def parsed(tmp_path, text: str | None = None) -> cfg.ConfigOpts:
    """A ConfigOpts with our options, read from a file with ``text``."""
    opts = cfg.ConfigOpts()
    conf.register_opts(opts)
    args = []
    if text is not None:
        path = tmp_path / "mistral.conf"
        path.write_text(text)
        args = ["--config-file", str(path)]
    opts(args=args, project="mistral-db-flows-test",
         default_config_files=[], default_config_dirs=[])
    return opts


def test_defaults_give_sqlite_in_the_working_directory(tmp_path,
                                                       monkeypatch):
    """No connection: mistral.sqlite in the cwd, like upstream."""
    monkeypatch.chdir(tmp_path)
    settings = conf.settings_from_conf(parsed(tmp_path))
    assert settings.database_url == "sqlite:///%s" % (
        tmp_path / "mistral.sqlite")
    assert settings.tasks == conf.DEFAULT_TASKS
    assert settings.lock_timeout == conf.DEFAULT_LOCK_TIMEOUT
    assert settings.backup_dir is None and settings.state_dir is None


def test_mistral_conf_is_read_unchanged(tmp_path):
    """A real mistral.conf (other options, other sections) just works."""
    opts = parsed(tmp_path, """
[DEFAULT]
transport_url = rabbit://guest:guest@localhost:5672/
debug = True

[database]
connection = mysql+pymysql://mistral:pw@db.example/mistral?charset=utf8
max_pool_size = 50
connection_recycle_time = 3600

[keystone_authtoken]
auth_url = http://keystone:5000/v3
""")
    settings = conf.settings_from_conf(opts)
    assert settings.database_url == \
        "mysql+pymysql://mistral:pw@db.example/mistral?charset=utf8"


def test_task_lists_and_safety_options_are_read(tmp_path):
    """[db_manage] task lists are data an operator (or package) sets."""
    opts = parsed(tmp_path, """
[db_manage]
upgrade_tasks = check_branches, migrate, corp_notify, verify
verify_tasks = verify,corp_audit
backup_dir = /var/backups/mistral
state_dir = /var/lib/mistral-db-flows
lock_timeout = 5
""")
    settings = conf.settings_from_conf(opts)
    assert settings.task_names("upgrade") == [
        "check_branches", "migrate", "corp_notify", "verify"]
    assert settings.task_names("verify") == ["verify", "corp_audit"]
    assert settings.task_names("stamp") == conf.DEFAULT_TASKS["stamp"]
    assert (settings.backup_dir, settings.state_dir,
            settings.lock_timeout) == ("/var/backups/mistral",
                                       "/var/lib/mistral-db-flows", 5)


def test_bad_option_value_is_refused(tmp_path):
    """A negative lock timeout is a configuration error."""
    opts = parsed(tmp_path, "[db_manage]\nlock_timeout = -3\n")
    with pytest.raises(cfg.ConfigFileValueError):
        conf.settings_from_conf(opts)


def test_connection_is_secret_and_never_shown():
    """The URL may carry a password: oslo.config masks it, so do we."""
    (opt,) = [o for o in conf.database_opts if o.name == "connection"]
    assert opt.secret
    settings = conf.Settings(database_url="postgresql://u:hunter2@h/db")
    assert "hunter2" not in repr(settings)


def test_settings_default_task_lists_are_copies():
    """Changing one Settings' list never changes the defaults."""
    settings = conf.Settings(database_url="sqlite://")
    settings.tasks["upgrade"].append("x")
    assert "x" not in conf.DEFAULT_TASKS["upgrade"]
    assert "x" not in conf.Settings(database_url="sqlite://").tasks[
        "upgrade"]


def test_registering_twice_is_harmless():
    """The CLI and an embedder may both register the options."""
    opts = cfg.ConfigOpts()
    conf.register_opts(opts)
    conf.register_opts(opts)


def test_list_opts_covers_every_option():
    """The generator sees both groups and every option we register."""
    groups = dict(conf.list_opts())
    assert [o.name for o in groups["database"]] == ["connection"]
    names = {o.name for o in groups["db_manage"]}
    assert names == {"%s_tasks" % op for op in conf.OPERATIONS} | {
        "backup_dir", "state_dir", "lock_timeout", "backup",
        "backup_keep", "on_failure", "logbook_connection", "runs_keep",
        "populate_remove_missing", "statement_lock_timeout",
        "refuse_if_connected", "keep_revert_data"}


def test_sample_config_is_up_to_date(tmp_path):
    """etc/'s sample is what oslo-config-generator writes today."""
    out = tmp_path / "sample.conf"
    generator.main(args=["--config-file", str(GENERATOR_CONF),
                         "--output-file", str(out)])
    assert out.read_text() == SAMPLE.read_text(), (
        "regenerate it: oslo-config-generator --config-file %s"
        % os.path.relpath(GENERATOR_CONF, ROOT))


@pytest.mark.parametrize("text, mode", [
    (None, "steps"), ("steps", "steps"), ("full", "full"),
    ("none", "none"), ("FULL", "full")])
def test_backup_choices_are_read(tmp_path, text, mode):
    """[db_manage] backup: steps (default), full or none."""
    opts = parsed(tmp_path, "[db_manage]\nbackup = %s\n" % text
                  if text else None)
    assert conf.settings_from_conf(opts).backup == mode


@pytest.mark.parametrize("text, mode", [("true", "steps"),
                                        ("false", "none"),
                                        ("yes", "steps"), ("0", "none")])
def test_old_boolean_backup_is_mapped_with_a_warning(tmp_path, caplog,
                                                     text, mode):
    """An old config's backup = true/false still works, and says it is
    deprecated and what it means now."""
    opts = parsed(tmp_path, "[db_manage]\nbackup = %s\n" % text)
    assert conf.settings_from_conf(opts).backup == mode
    assert "deprecated" in caplog.text and mode in caplog.text


def test_unknown_backup_value_is_a_config_error(tmp_path):
    """Neither a choice nor an old boolean: ConfigError naming both."""
    from mistral_db_flows import exceptions

    opts = parsed(tmp_path, "[db_manage]\nbackup = sometimes\n")
    with pytest.raises(exceptions.ConfigError) as info:
        conf.settings_from_conf(opts)
    assert "steps, full, none" in str(info.value)
    assert "sometimes" in str(info.value)


def test_what_each_backup_mode_keeps():
    """steps: journal, no dump; full: both, the dump for upgrade only
    (stamp and populate undo their own writes); none: nothing, and a
    failure stops. Embedders' booleans mean steps/none."""
    steps = conf.Settings(database_url="sqlite://")
    assert (steps.keeps_step_reverts, steps.restores_on_failure) == (
        True, True)
    assert [steps.takes_dump(op) for op in
            ("upgrade", "stamp", "populate")] == [False, False, False]
    full = conf.Settings(database_url="sqlite://", backup="full")
    assert full.keeps_step_reverts and full.takes_dump("upgrade")
    assert not (full.takes_dump("stamp") or full.takes_dump("populate"))
    none = conf.Settings(database_url="sqlite://", backup=False)
    assert none.backup == "none"
    assert not (none.keeps_step_reverts or none.restores_on_failure
                or none.takes_dump("populate"))
    assert conf.Settings(database_url="sqlite://", backup=True).backup \
        == "steps"
    stop = conf.Settings(database_url="sqlite://", on_failure="stop")
    assert stop.keeps_step_reverts and not stop.restores_on_failure


@pytest.mark.parametrize("text", [
    "[db_manage]\nbackup = none\nkeep_revert_data = true\n",
    "[db_manage]\nbackup = false\nkeep_revert_data = true\n"])
def test_keeping_revert_data_without_recording_it_is_refused(tmp_path,
                                                             text):
    """backup = none records no revert data, so keep_revert_data would
    promise a downgrade that is then refused: a ConfigError saying so."""
    from mistral_db_flows import exceptions

    opts = parsed(tmp_path, text)
    with pytest.raises(exceptions.ConfigError) as info:
        conf.settings_from_conf(opts)
    assert "keep_revert_data needs backup = steps or full" in str(info.value)
    assert conf.Settings(database_url="sqlite://", backup="full",
                         keep_revert_data=True).keeps_step_reverts
