"""What an operator reads: quiet by default, honest about reverts and
resumes, and the logging options upstream's tool takes.

Runs are in-process (``cli.main``) unless a real process is the point
(a closed stdout, a missing driver).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import pathlib
import subprocess
import sys

import pytest

from mistral_db_flows import cli
from mistral_db_flows import logs
from tests import conftest
from tests.functional import safety_util as su

SCRIPT = su.SCRIPT
MAX_DEFAULT_LINES = 15


def _conf(tmp_path: pathlib.Path, url: str, **options: str) -> str:
    path = tmp_path / "mistral.conf"
    lines = ["[DEFAULT]"] + ["%s = %s" % item for item in options.items()]
    lines += ["[database]", "connection = %s" % url]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _main(conf: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--config-file", conf, *argv])
    return code, out.getvalue(), err.getvalue()


# -- quiet by default ------------------------------------------------------

@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_empty_database_upgrade_head_is_quiet(db_url, tmp_path):
    """Issue 11.6: at most 15 stderr lines for a whole upgrade of an
    empty database (it is 1: the summary); no Alembic INFO line, no line
    per step."""
    code, out, err = _main(_conf(tmp_path, db_url), "upgrade", "head")
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) <= MAX_DEFAULT_LINES, err
    assert lines[-1].startswith("upgrade: upgraded <base> -> 045"), err
    assert "INFO" not in err and "migrate_001" not in err, err
    assert out == ""


def test_verbose_shows_steps_and_alembic_lines(tmp_path):
    """-v (oslo.log's verbose): every step's start and end and Alembic's
    "Running upgrade" lines, but not Alembic's set-up chatter."""
    url = "sqlite:///%s" % (tmp_path / "m.sqlite")
    code, _, err = _main(_conf(tmp_path, url), "-v", "upgrade", "003")
    assert code == 0, err
    assert "migrate_002: started" in err
    assert "migrate_002: done in" in err
    assert "INFO  [alembic.runtime.migration] Running upgrade 001 -> 002" \
        in err
    assert "setup plugin" not in err and "Context impl" not in err


def test_debug_shows_debug_records(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "m.sqlite")
    code, _, err = _main(_conf(tmp_path, url), "-d", "upgrade", "002")
    assert code == 0, err
    assert "migrate_002: started" in err
    assert "DEBUG [" in err


@pytest.fixture
def fault_tool(tmp_path):
    su.require_fault_plugins()

    def make(url: str) -> su.Tool:
        return su.Tool(url, tmp_path / "tool")

    return make


@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_stop_prints_no_revert_of_what_changed_nothing(db_url, fault_tool):
    """--on-failure stop: the failed read-only step and the backup that
    restores nothing print no "reverting"/"reverted" line; the run
    resumed later says where it resumes."""
    su.prepare(db_url, "019")
    tool = fault_tool(db_url)
    config = tool.config(faults=True)
    stopped = tool.call("upgrade", "head", "--on-failure", "stop",
                        fault="before:verify:fail", config=config)
    assert stopped.code == su.EXIT_STEP_FAILED, stopped
    assert "verify: failed in" in stopped.err
    assert "revert" not in stopped.err, stopped.err

    resumed = tool.call("upgrade", "head", config=config)
    assert resumed.code == 0, resumed
    first = resumed.err.splitlines()[0]
    assert first.startswith("resuming run "), resumed.err
    assert first.endswith(" at step verify"), resumed.err


@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_a_reverted_failure_names_only_the_steps_that_undid_something(
        db_url, fault_tool):
    """The default revert: the failed step and each migrate step that
    undid its change, newest first, are shown; the read-only steps, the
    failed step that had done nothing yet and the backup (no dump) are
    not."""
    su.prepare(db_url, "019")
    tool = fault_tool(db_url)
    failed = tool.call("upgrade", "head", fault="before:migrate_030:fail")
    assert failed.code == su.EXIT_STEP_FAILED, failed
    lines = failed.err.splitlines()
    assert lines[0].startswith("migrate_030: failed in"), failed.err
    reverted = [line.split(":")[0] for line in lines[1:-1]]
    assert reverted == ["migrate_%03d" % r for r in range(29, 19, -1)], \
        failed.err
    assert all(": reverted in " in line for line in lines[1:-1])
    assert "check_branches" not in failed.err
    assert "backup" not in failed.err
    assert "migrate_030: reverted" not in failed.err


@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_a_killed_run_says_it_resumes_at_its_step(db_url, fault_tool):
    """After a kill, the next run's first line says which run it
    resumes and at which step."""
    su.prepare(db_url, "019")
    tool = fault_tool(db_url)
    killed = tool.run("upgrade", "head", fault="before:migrate_025:kill")
    assert killed.code == -9, killed
    resumed = tool.call("upgrade", "head")
    assert resumed.code == 0, resumed
    first = resumed.err.splitlines()[0]
    assert first.startswith("resuming run "), resumed.err
    assert first.endswith(" at step migrate_025"), resumed.err


# -- a closed stdout -------------------------------------------------------

def test_closed_stdout_ends_quietly_with_141(tmp_path):
    """`mistral-db-manage history | head -1` whose reader has gone: exit
    141 (128 + SIGPIPE, what a shell reports), nothing on stderr."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [SCRIPT, "--config-file", _conf(tmp_path, "sqlite://"),
             "history"], stdout=write, stderr=subprocess.PIPE, text=True,
            timeout=120)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


# -- a missing driver ------------------------------------------------------

@pytest.mark.parametrize("url,modules,message", [
    ("postgresql://postgres@127.0.0.1/nothing", ["psycopg2", "psycopg"],
     "the PostgreSQL driver psycopg2 is not installed: pip install "
     "'mistral-db-flows[postgresql]'"),
    ("mysql+pymysql://root@127.0.0.1/nothing", ["pymysql", "MySQLdb"],
     "the MySQL/MariaDB driver pymysql is not installed: pip install "
     "'mistral-db-flows[mysql]'"),
], ids=["postgresql", "mysql"])
def test_missing_driver_is_one_line_naming_the_extra(url, modules, message,
                                                     tmp_path):
    """Issue 11.2: a console script without the backend's driver says
    which package extra to install, in one line, exit 2; it does not
    blame the URL."""
    block = "".join("sys.modules[%r] = None; " % m for m in modules)
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys; %sfrom mistral_db_flows import cli; "
         "sys.exit(cli.main(sys.argv[1:]))" % block,
         "--config-file", _conf(tmp_path, url), "upgrade", "head"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc
    assert proc.stderr == "mistral-db-manage: error: %s\n" % message


# -- upstream's logging options --------------------------------------------

def _sqlite(tmp_path: pathlib.Path) -> str:
    return "sqlite:///%s" % (tmp_path / "m.sqlite")


def test_log_file_gets_steps_and_alembic_records(tmp_path):
    """--log-file: the file keeps every step, Alembic's records and the
    summary, while stderr stays quiet."""
    log = tmp_path / "run.log"
    code, _, err = _main(_conf(tmp_path, _sqlite(tmp_path)),
                         "--log-file", str(log), "upgrade", "002")
    assert code == 0, err
    assert len(err.splitlines()) == 1, err
    text = log.read_text()
    assert "migrate_002: started" in text
    assert "migrate_002: done in" in text
    assert "alembic.runtime.migration Running upgrade 001 -> 002" in text
    assert "upgrade: upgraded <base> -> 002" in text


def test_log_file_keeps_the_error_line(tmp_path):
    log = tmp_path / "run.log"
    code, _, err = _main(_conf(tmp_path, _sqlite(tmp_path)),
                         "--log-file", str(log), "upgrade", "999")
    assert code == 4, err
    assert "ERROR mistral_db_flows.messages error: unknown revision '999'" \
        in log.read_text()


def test_log_dir_alone_and_with_a_relative_log_file(tmp_path):
    """oslo.log's rule: log_dir alone is <dir>/mistral-db-manage.log;
    with log_file, the file is taken relative to it (here set in the
    config file, as mistral.conf may)."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    code, _, err = _main(_conf(tmp_path, _sqlite(tmp_path)),
                         "--log-dir", str(logdir), "upgrade", "001")
    assert code == 0, err
    assert "migrate_001: done" in (logdir / "mistral-db-manage.log"
                                   ).read_text()
    conf = _conf(tmp_path, _sqlite(tmp_path), log_dir=str(logdir),
                 log_file="named.log")
    code, _, err = _main(conf, "upgrade", "002")
    assert code == 0, err
    assert "migrate_002: done" in (logdir / "named.log").read_text()


def test_a_log_file_that_cannot_be_opened_is_a_config_error(tmp_path):
    code, _, err = _main(_conf(tmp_path, _sqlite(tmp_path)),
                         "--log-dir", str(tmp_path / "missing"), "current")
    assert code == 2
    assert err == ("mistral-db-manage: error: log file %s cannot be "
                   "opened: No such file or directory (check log_file and "
                   "log_dir)\n" % (tmp_path / "missing" /
                                   "mistral-db-manage.log"))


LOGGING_INI = """\
[loggers]
keys = root

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = INFO
handlers = file

[handler_file]
class = FileHandler
args = (PATH, "a")
formatter = plain

[formatter_plain]
format = ini %(levelname)s %(name)s: %(message)s
"""


def test_log_config_append_routes_records_by_the_ini(tmp_path):
    """--log-config-append: a real logging ini decides where records go
    (here a file, in its own format); stderr keeps the operator's
    messages only; logging is put back afterwards."""
    out_log = tmp_path / "ini.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(LOGGING_INI.replace("PATH", repr(str(out_log))))
    before = list(logging.getLogger().handlers)
    code, _, err = _main(_conf(tmp_path, _sqlite(tmp_path)),
                         "--log-config-append", str(ini), "upgrade", "002")
    assert code == 0, err
    assert err.splitlines() == [
        line for line in err.splitlines() if "INFO" not in line]
    assert err.splitlines()[-1].startswith("upgrade: upgraded"), err
    assert "ini INFO alembic.runtime.migration: Running upgrade 001 -> " \
        "002" in out_log.read_text()
    assert logging.getLogger().handlers == before


def test_a_bad_log_config_append_is_a_config_error(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[loggers]\nkeys = root\n")
    code, _, err = _main(_conf(tmp_path, _sqlite(tmp_path)),
                         "--log-config-append", str(ini), "current")
    assert code == 2
    assert err.startswith("mistral-db-manage: error: logging config file "
                          "%s is not a logging configuration" % ini), err


def test_use_syslog_sends_records_to_syslog(tmp_path, monkeypatch):
    """--use-syslog: a syslog handler (libc's syslog, like oslo.log's)
    receives the records, with the configured facility."""
    import syslog

    sent, opened = [], []
    monkeypatch.setattr(syslog, "openlog",
                        lambda *args: opened.append(args))
    monkeypatch.setattr(syslog, "syslog",
                        lambda priority, text: sent.append((priority, text)))
    code, _, err = _main(_conf(tmp_path, _sqlite(tmp_path)),
                         "--use-syslog", "--syslog-log-facility", "LOCAL3",
                         "upgrade", "001")
    assert code == 0, err
    assert opened == [("mistral-db-manage", 0, syslog.LOG_LOCAL3)]
    assert (syslog.LOG_INFO, "alembic.runtime.migration INFO Running "
            "upgrade  -> 001, Kilo release") in sent
    assert any(text.endswith("migrate_001: started") for _, text in sent)


def test_a_bad_syslog_facility_is_a_config_error(tmp_path):
    code, _, err = _main(_conf(tmp_path, _sqlite(tmp_path)),
                         "--use-syslog", "--syslog-log-facility", "LOG_NOPE",
                         "current")
    assert code == 2
    assert "syslog_log_facility 'LOG_NOPE' is not a syslog facility" in err


def test_config_dir_is_read(tmp_path):
    """--config-dir (oslo.config's): its *.conf files are read."""
    folder = tmp_path / "mistral.conf.d"
    folder.mkdir()
    (folder / "db.conf").write_text("[database]\nconnection = %s\n"
                                    % _sqlite(tmp_path))
    code, out, err = _main(_conf(tmp_path, "sqlite://"), "--config-dir",
                           str(folder), "current", "--verbose")
    assert code == 0, err
    assert str(tmp_path / "m.sqlite") in out


def test_log_targets_keep_the_password_hidden(tmp_path):
    """Records in a log file mask the URL's password like stderr does."""
    log = tmp_path / "run.log"
    url = "postgresql+psycopg2://u:s3cret@127.0.0.1:1/nothing"
    code, _, err = _main(_conf(tmp_path, url), "--log-file", str(log),
                         "current")
    assert code == 3, err
    assert "s3cret" not in log.read_text() and "s3cret" not in err
    assert "u:***@127.0.0.1:1" in log.read_text()


def test_messages_logger_is_silent_outside_a_command(capsys):
    """Outside a command nothing listens to the operator's messages:
    recording one prints nothing (no last-resort handler)."""
    logs.record(logging.ERROR, "not printed")
    assert capsys.readouterr() == ("", "")
