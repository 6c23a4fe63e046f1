"""The CLI without a database: parsing, rendering, exit codes, masking.

``api`` is replaced by a fake module, so these tests check only what
``cli`` itself does: which api function it calls with which arguments,
how it renders the result, and how it turns errors into one line and an
exit code.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import types

import pytest

import mistral_db_flows
from mistral_db_flows import cli
from mistral_db_flows import console
from mistral_db_flows import exceptions
from mistral_db_flows import results
from mistral_db_flows import urls

PASSWORD = "s3cret-pw"
URL = "postgresql+psycopg2://mistral:%s@127.0.0.1:5432/mistral" % PASSWORD


class FakeApi(types.ModuleType):
    """Records calls; returns canned results or raises ``self.error``."""

    def __init__(self) -> None:
        super().__init__("mistral_db_flows.api")
        self.calls: list[tuple[str, tuple, dict]] = []
        self.error: BaseException | None = None
        self.current_result = results.Current(["045"], "045", True)
        self.status_result = results.Status("045", "045", [])

    def _call(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        if self.error is not None:
            raise self.error

    def current(self, settings):
        self._call("current", settings)
        return self.current_result

    def history(self, settings=None):
        self._call("history", settings)
        return [results.RevisionInfo("045", "044", True, "Add indexes."),
                results.RevisionInfo(
                    "041", "040", False,
                    "Update type of 'description' field for\n"
                    "   table 'workflow_executions_v2' to text"),
                results.RevisionInfo("001", None, False, "Kilo release")]

    def branches(self, settings=None):
        self._call("branches", settings)
        return []

    def check_migration(self, settings=None):
        self._call("check_migration", settings)
        return results.Check(head="045", base="001", revisions=45)

    def status(self, settings):
        self._call("status", settings)
        return self.status_result

    def _run(self, operation, state="upgraded", output=None, sql=False):
        if sql and output is not None:
            output.write("BEGIN;\nCOMMIT;\n")
        return results.Run(operation, "offline" if sql else state, "030",
                           "045", [results.Step("migrate-031", "done", 0.5)])

    def upgrade(self, settings, target=None, *, delta=None, sql=False,
                output=None, progress=None):
        self._call("upgrade", settings, target, delta=delta, sql=sql)
        return self._run("upgrade", output=output, sql=sql)

    def stamp(self, settings, revision, *, sql=False, output=None,
              progress=None):
        self._call("stamp", settings, revision, sql=sql)
        return self._run("stamp", "stamped", output=output, sql=sql)

    def populate(self, settings, *, progress=None):
        self._call("populate", settings)
        return self._run("populate", "populated")

    def populate_actions(self, settings, *, progress=None):
        self._call("populate_actions", settings)
        return self._run("populate_actions", "populated")

    def verify(self, settings, *, progress=None):
        self._call("verify", settings)
        return self._run("verify", "verified")

    def revision(self, settings, message, *, autogenerate=False,
                 rev_id=None):
        self._call("revision", settings, message, autogenerate=autogenerate,
                   rev_id=rev_id)
        return results.NewRevision("/src/migrations/versions/046_x.py",
                                   "046", "045", message)


@pytest.fixture
def api(monkeypatch):
    fake = FakeApi()
    monkeypatch.setitem(sys.modules, "mistral_db_flows.api", fake)
    monkeypatch.setattr(mistral_db_flows, "api", fake, raising=False)
    return fake


@pytest.fixture
def conf_file(tmp_path):
    path = tmp_path / "mistral.conf"
    path.write_text("[database]\nconnection = %s\n" % URL)
    return str(path)


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mistral-db-manage: error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- parsing ---------------------------------------------------------------

def test_help_lists_every_command(capsys):
    """--help exits 0 and names every command, like upstream's usage."""
    with pytest.raises(SystemExit) as exc:  # argparse exits on --help
        raise SystemExit(cli.main(["--help"]))
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out
    assert "--config-file" in out and "--format" in out


@pytest.mark.parametrize("argv, needle", [
    ([], "required: command"),
    (["frobnicate", "-1"], "invalid choice: 'frobnicate'"),
    (["upgrade", "--delta", "x"], "invalid int value"),
    (["--format", "xml", "current"], "xml"),
])
def test_usage_errors_are_one_line(capsys, api, argv, needle):
    """argparse errors: exit 2 and only the error line, not the usage."""
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in one_error_line(err)
    assert api.calls == []


@pytest.mark.parametrize("argv, needle", [
    (["upgrade"], "You must provide a revision or relative delta"),
    (["upgrade", "head", "--delta", "1"], "not both"),
    (["stamp"], "stamp needs a revision"),
    (["stamp", "--sql"], "stamp needs a revision"),
    (["revision"], "needs a message"),
    (["current", "--sql"], "cannot run offline"),
    (["status", "--sql"], "cannot run offline"),
    (["populate", "--sql"], "cannot run offline"),
    (["populate_actions", "--sql"], "cannot run offline"),
    (["verify", "--sql"], "cannot run offline"),
])
def test_argument_combinations_refused_before_api(capsys, api, conf_file,
                                                  argv, needle):
    """Combinations the CLI refuses itself: exit 2, api never called."""
    code, out, err = run(capsys, "--config-file", conf_file, *argv)
    assert code == 2
    assert needle in one_error_line(err)
    assert api.calls == []
    assert out == ""


def test_missing_config_file(capsys, api, tmp_path):
    """A missing --config-file: exit 2 naming the file, api not called."""
    missing = str(tmp_path / "nope.conf")
    code, out, err = run(capsys, "--config-file", missing, "current")
    assert code == 2
    assert missing in one_error_line(err)
    assert api.calls == []


@pytest.mark.parametrize("content, needle", [
    (b"[database\nconnection = x\n", "cannot be parsed"),
    (b"\xff\xfe[database]\n", "not UTF-8"),
])
def test_unparsable_config_file(capsys, api, tmp_path, content, needle):
    """A config file that is not INI text: exit 2 with one line."""
    path = tmp_path / "bad.conf"
    path.write_bytes(content)
    code, out, err = run(capsys, "--config-file", str(path), "current")
    assert code == 2
    assert needle in one_error_line(err)


def test_config_file_is_a_directory(capsys, api, tmp_path):
    """--config-file naming a directory: exit 2, not an OSError trace."""
    code, out, err = run(capsys, "--config-file", str(tmp_path), "current")
    assert code == 2
    assert "cannot be read" in one_error_line(err)


# -- rendering -------------------------------------------------------------

def test_current_like_upstream(capsys, api, conf_file):
    """current prints upstream's `045 (head)` and passes the URL on."""
    code, out, err = run(capsys, "--config-file", conf_file, "current")
    assert (code, out) == (0, "045 (head)\n")
    settings = api.calls[0][1][0]
    assert settings.database_url == URL


def test_current_not_at_head_and_empty(capsys, api, conf_file):
    """A revision below head prints bare; an empty database prints nothing."""
    api.current_result = results.Current(["030"], "045", False)
    assert run(capsys, "--config-file", conf_file, "current")[1] == "030\n"
    api.current_result = results.Current([], "045", False)
    assert run(capsys, "--config-file", conf_file, "current")[1] == ""


def test_current_verbose_masks_password(capsys, api, conf_file):
    """current --verbose shows URL and parent, the password masked."""
    code, out, err = run(capsys, "--config-file", conf_file, "current",
                         "--verbose")
    assert code == 0
    assert PASSWORD not in out + err
    assert "mistral:***@127.0.0.1" in out
    assert "Rev: 045 (head)" in out and "Parent: 044" in out


def test_history_newest_first_with_multiline_doc(capsys, api):
    """history keeps upstream's line format and multi-line docstrings."""
    code, out, err = run(capsys, "history")
    assert code == 0
    assert out.splitlines() == [
        "044 -> 045 (head), Add indexes.",
        "040 -> 041, Update type of 'description' field for",
        "   table 'workflow_executions_v2' to text",
        "<base> -> 001, Kilo release"]


def test_branches_prints_nothing_for_a_chain(capsys, api):
    """branches on a linear history prints nothing, like upstream."""
    assert run(capsys, "branches") == (0, "", "")


def test_check_migration_ok(capsys, api):
    """check_migration exits 0 and names the head."""
    code, out, err = run(capsys, "check_migration")
    assert code == 0 and "045" in out


def test_json_documents(capsys, api, conf_file):
    """--format json: one JSON document per command with to_dict() keys."""
    code, out, _ = run(capsys, "--config-file", conf_file, "--format",
                       "json", "current")
    assert json.loads(out) == {"revisions": ["045"], "head": "045",
                               "at_head": True}
    code, out, _ = run(capsys, "--format", "json", "history")
    assert [r["id"] for r in json.loads(out)["revisions"]] == \
        ["045", "041", "001"]
    # --format after the command works too.
    code, out, err = run(capsys, "--config-file", conf_file, "upgrade",
                         "head", "--format", "json")
    doc = json.loads(out)
    assert doc["operation"] == "upgrade" and doc["state"] == "upgraded"
    assert doc["steps"][0]["name"] == "migrate-031"
    assert "upgrade: upgraded 030 -> 045" in err


def test_upgrade_targets_passed_through(capsys, api, conf_file):
    """upgrade passes target / delta as given; stdout stays empty."""
    for argv, target, delta in [(["head"], "head", None),
                                (["+2"], "+2", None),
                                (["--delta", "3"], None, 3),
                                (["--delta", "0"], None, 0)]:
        api.calls.clear()
        code, out, err = run(capsys, "--config-file", conf_file, "upgrade",
                             *argv)
        assert (code, out) == (0, "")
        name, args, kwargs = api.calls[0]
        assert (name, args[1], kwargs["delta"]) == ("upgrade", target,
                                                     delta)


@pytest.mark.parametrize("command", ["upgrade", "populate"])
def test_refuse_if_connected_flag_reaches_the_settings(capsys, api,
                                                       conf_file, command):
    """--refuse-if-connected sets refuse_if_connected for that run; by
    default the config's value (false) stays."""
    for argv, expected in (([], False), (["--refuse-if-connected"], True)):
        api.calls.clear()
        target = ["head"] if command == "upgrade" else []
        code, out, err = run(capsys, "--config-file", conf_file, command,
                             *target, *argv)
        assert code == 0, err
        assert api.calls[0][1][0].refuse_if_connected is expected


def test_upgrade_sql_goes_to_stdout(capsys, api, conf_file):
    """--sql writes the script on stdout; in JSON it is the "sql" key."""
    code, out, err = run(capsys, "--config-file", conf_file, "upgrade",
                         "001:010", "--sql")
    assert (code, out) == (0, "BEGIN;\nCOMMIT;\n")
    assert api.calls[0][2]["sql"] is True
    code, out, err = run(capsys, "--config-file", conf_file, "--format",
                         "json", "stamp", "head", "--sql")
    doc = json.loads(out)
    assert doc["sql"] == "BEGIN;\nCOMMIT;\n" and doc["state"] == "offline"


@pytest.mark.parametrize("pending, interrupted, code", [
    ([], None, 0), (["031", "032"], None, 10),
    ([], {"operation": "upgrade", "target": "045", "step": "migrate_031",
          "state": "running"}, 10)])
def test_status_exit_codes(capsys, api, conf_file, pending, interrupted,
                           code):
    """status: 0 at head, 10 when an upgrade (or a resume) is needed."""
    api.status_result = results.Status("030" if pending else "045", "045",
                                       pending, interrupted)
    got, out, err = run(capsys, "--config-file", conf_file, "status")
    assert got == code
    assert "head: 045" in out
    got, out, err = run(capsys, "--config-file", conf_file, "--format",
                        "json", "status")
    assert got == code
    assert json.loads(out)["upgrade_needed"] is (code == 10)


def test_status_error_is_exit_1(capsys, api, conf_file):
    """status maps every error to 1, as deployment tools expect."""
    api.error = exceptions.DatabaseUnreachable("postgresql://x", "refused")
    code, out, err = run(capsys, "--config-file", conf_file, "status")
    assert code == 1
    assert "cannot connect" in one_error_line(err)


def test_revision(capsys, api, conf_file):
    """revision -m passes message, --autogenerate and --rev-id."""
    code, out, err = run(capsys, "revision", "-m", "add x",
                         "--autogenerate", "--rev-id", "046")
    assert code == 0 and out.strip().endswith("046_x.py")
    assert api.calls[0][2] == {"autogenerate": True, "rev_id": "046"}


@pytest.mark.parametrize("command", ["populate", "populate_actions",
                                     "verify", "stamp"])
def test_operations_print_nothing_on_stdout(capsys, api, conf_file,
                                            command):
    """Flow commands: stdout empty, one summary line on stderr."""
    argv = [command] + (["head"] if command == "stamp" else [])
    code, out, err = run(capsys, "--config-file", conf_file, *argv)
    assert (code, out) == (0, "")
    assert err.startswith(command + ": ")


# -- errors ----------------------------------------------------------------

@pytest.mark.parametrize("error, code", [
    (exceptions.ConfigError("bad option"), 2),
    (exceptions.BadUrl("x://", "no driver"), 2),
    (exceptions.DatabaseUnreachable("postgresql://u:***@h/d", "refused"), 3),
    (exceptions.UnknownRevision("999"), 4),
    (exceptions.BadTarget("030:001", "bad range"), 2),
    (exceptions.BranchError(["010"], ["044", "045"]), 5),
    (exceptions.ReadOnlyMigrations("/site-packages/x"), 2),
    (exceptions.SchemaConflict("index", "ix", "t", "a", "b"), 6),
    (exceptions.StepFailed("migrate-031", "boom"), 7),
    (exceptions.StepFailed("migrate-031", exceptions.SchemaConflict(
        "index", "ix", "t", "a", "b")), 6),
    (exceptions.StepFailed("migrate-031", exceptions.DatabaseUnreachable(
        "postgresql://u:***@h/d", "server closed the connection")), 3),
    (exceptions.PluginError("backup", "no such plugin"), 2),
    (exceptions.MistralDbError("generic"), 1),
    (exceptions.ConnectionLost("postgresql://u:***@h/d", "killed"), 3),
    (exceptions.BackupError("no space in /b", reason="no-space"), 8),
    (exceptions.RestoreError("cannot read /b/x", reason="mismatch"), 9),
    (exceptions.LockTimeout(database="d", lock="l", timeout=1.0,
                            owner="upgrade", holder=None), 11),
    (exceptions.ResumeRefused("this is stamp", operation="upgrade",
                              target="045", step="migrate_013"), 12),
    (exceptions.DefinitionError("/defs/x.yaml", "not YAML"), 13),
    (exceptions.LogbookError("/state/logbook.sqlite", "disk is full"), 1),
    (exceptions.LockError("lost the lock", database="d"), 1),
    (exceptions.StepFailed("backup", exceptions.BackupError(
        "cannot write the backup /b/x", reason="no-space")), 8),
    (exceptions.StepFailed("migrate-031", "boom", restore_error=(
        exceptions.RestoreError("cannot read /b/x", reason="mismatch"))), 9),
    (exceptions.StepFailed("migrate-031", exceptions.ConnectionLost(
        "postgresql://u:***@h/d", "killed"), restore_error="broke"), 9),
])
def test_error_family_exit_codes(capsys, api, conf_file, error, code):
    """Each error: its exit_code, one line, no traceback."""
    api.error = error
    got, out, err = run(capsys, "--config-file", conf_file, "upgrade",
                        "head")
    assert got == code
    assert str(error).split(";")[0] in one_error_line(err)


def test_unexpected_error_one_line_then_traceback_with_debug(capsys, api,
                                                             conf_file):
    """An unexpected exception: one line and exit 1; --debug adds the trace.

    The password is masked in both, even when the exception carries it
    (in a URL, or a connection string as libpq echoes it).
    """
    api.error = RuntimeError("driver said: %s password=%s rejected\n"
                             "line 2" % (URL, PASSWORD))
    code, out, err = run(capsys, "--config-file", conf_file, "current")
    assert code == 1
    line = one_error_line(err)
    assert "RuntimeError" in line and "--debug" in line
    assert PASSWORD not in err
    code, out, err = run(capsys, "--config-file", conf_file, "--debug",
                         "current")
    assert code == 1
    assert "Traceback" in err and PASSWORD not in err
    assert err.splitlines()[-1].startswith("mistral-db-manage: error: ")


def test_wrapped_failure_is_unwrapped(capsys, api, conf_file):
    """A TaskFlow WrappedFailure around our error keeps its exit code."""
    class Failure:
        exception = exceptions.UnknownRevision("999", where="database")

    class WrappedFailure(Exception):
        def __iter__(self):
            return iter([Failure()])

    api.error = WrappedFailure("wrapped")
    code, out, err = run(capsys, "--config-file", conf_file, "upgrade",
                         "head")
    assert code == 4 and "stamped with revision '999'" in err


def test_json_error_document(capsys, api, conf_file):
    """--format json on error: the JSON error document on stdout."""
    api.error = exceptions.UnknownRevision("999")
    code, out, err = run(capsys, "--config-file", conf_file, "--format",
                         "json", "upgrade", "999")
    assert code == 4
    doc = json.loads(out)["error"]
    assert doc["type"] == "UnknownRevision" and doc["exit_code"] == 4


def test_keyboard_interrupt(capsys, api, conf_file):
    """Ctrl-C: exit 130 and one line, no traceback."""
    api.error = KeyboardInterrupt()
    code, out, err = run(capsys, "--config-file", conf_file, "upgrade",
                         "head")
    assert code == 130 and "interrupted" in one_error_line(err)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143),
                                          (signal.SIGINT, 130)])
def test_a_signal_cancels_then_exits_with_its_code(capsys, api, conf_file,
                                                   signum, code):
    """A signal during a command: api.cancel() is called (from the
    signal's thread), then the command is interrupted: exit 143 for
    SIGTERM, 130 for SIGINT, one line saying how to resume."""
    cancelled = []
    api.cancel = lambda: cancelled.append(True) or 1

    def signalled(settings, target=None, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError("not interrupted")

    api.upgrade = signalled
    started = time.monotonic()
    code_, out, err = run(capsys, "--config-file", conf_file, "upgrade",
                          "head")
    assert time.monotonic() - started < 4
    assert code_ == code
    assert cancelled == [True]
    line = one_error_line(err)
    assert "interrupted by %s" % signal.Signals(signum).name in line
    assert "Run the same command to resume, or `mistral-db-manage " \
        "abandon`" in line
    # The handlers are ours only while a command runs.
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_logging_masks_and_is_removed(capsys, api, conf_file):
    """Log lines go to stderr masked; main() leaves no handler behind."""
    before = list(logging.getLogger().handlers)

    def noisy(settings, progress=None):
        logging.getLogger("mistral_db_flows.test").info(
            "connecting to %s", settings.database_url)
        return results.Run("verify", "verified", "045", "045")

    api.verify = noisy
    code, out, err = run(capsys, "--config-file", conf_file, "verify")
    assert code == 0
    assert "connecting to" in err and PASSWORD not in err
    assert logging.getLogger().handlers == before


@pytest.mark.parametrize("debug", [False, True])
def test_library_tracebacks_only_with_debug(capsys, api, conf_file, debug):
    """A library logging an exception (TaskFlow a failed revert with its
    traceback, oslo.utils one formatted into its message) prints no
    traceback without --debug: the error is the one line; --debug shows
    them."""
    def failing(settings, target=None, **kwargs):
        try:
            raise RuntimeError("restore broke")
        except RuntimeError:
            logging.getLogger("taskflow.engines").exception(
                "Engine execution has failed")
        logging.getLogger("oslo_utils.excutils").error(
            "Original exception being dropped: %s",
            ["Traceback (most recent call last):\n", "  File x\n"])
        logging.getLogger("mistral_db_flows.test").warning("a warning")
        raise exceptions.StepFailed("migrate_031", "boom",
                                    restore_error="restore broke")

    api.upgrade = failing
    argv = ["--debug"] if debug else []
    code, out, err = run(capsys, "--config-file", conf_file, *argv,
                         "upgrade", "head")
    assert code == 9
    assert "a warning" in err
    if debug:
        assert err.count("Traceback") == 3  # two logged, main()'s own
        assert "Engine execution has failed" in err
    else:
        assert "Traceback" not in err
        assert "Engine execution" not in err and "dropped" not in err
        lines = err.splitlines()
        assert len(lines) == 2 and "a warning" in lines[0]
        assert lines[1].startswith("mistral-db-manage: error: step "
                                   "migrate_031 failed: boom")


def test_mask_url_and_password():
    """URL masking (urls.masked, Output.mask): the password is found and
    masked, even with an @; nothing else is touched."""
    assert urls.parse(URL).password == PASSWORD
    assert urls.masked(URL) == URL.replace(PASSWORD, "***")
    assert urls.parse("mysql://u:p@ss@h/d").password == "p@ss"
    assert urls.masked("mysql://u:p@ss@h/d") == "mysql://u:***@h/d"
    assert urls.parse("sqlite:///x.db").password is None
    assert urls.masked("sqlite:///x.db") == "sqlite:///x.db"
    out = console.Output("text", False)
    out.add_url(URL)
    assert out.mask("at %s: %s" % (URL, PASSWORD)) == \
        "at %s: %s" % (URL.replace(PASSWORD, "***"), PASSWORD)


def test_json_output_is_masked(capsys):
    """Every string of a JSON document has its URLs' passwords hidden,
    as the text output has."""
    out = console.Output("json", False)
    out.add_url(URL)
    out.document({"url": URL, "lines": ["x %s" % URL], 3: None, "n": 1.5})
    doc = json.loads(capsys.readouterr().out)
    assert PASSWORD not in json.dumps(doc)
    assert doc["url"] == URL.replace(PASSWORD, "***")
    assert doc["lines"] == ["x " + URL.replace(PASSWORD, "***")]
    assert doc["3"] is None and doc["n"] == 1.5


def test_help_imports_nothing_heavy():
    """--help must not import TaskFlow, Alembic or SQLAlchemy (speed)."""
    code = ("import sys\n"
            "from mistral_db_flows import cli\n"
            "try:\n"
            "    cli.main(['--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "heavy = {'taskflow', 'alembic', 'sqlalchemy'}\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_populate_report_lines():
    """populate's text report: one line per kind and change, warnings,
    then the run's summary line."""
    report = {"actions": {"added": ["std.a"], "unchanged": ["std.b"]},
              "workflows": {"removed": ["wf.old"]},
              "warnings": ["kept wf.cron: a cron trigger uses it"]}
    run = results.Run("populate", "populated", "045", "045",
                      [results.Step("backup", "done"),
                       results.Step("populate", "done", 0.1, report)])
    assert run.lines() == [
        "actions added: std.a", "actions unchanged: std.b",
        "workflows removed: wf.old",
        "warning: kept wf.cron: a cron trigger uses it",
        "populate: populated at 045, 2 steps in 0.1 s"]


def test_shell_completion_is_not_offered(capsys):
    """oslo.config's --shell_completion cannot work (its release ships no
    template): --help does not offer it and giving it is a usage error
    in one line, wherever it is put."""
    with pytest.raises(SystemExit):
        raise SystemExit(cli.main(["--help"]))
    assert "shell_completion" not in capsys.readouterr().out
    for argv in (["--shell_completion", "bash"],
                 ["--shell_completion", "bash", "current"],
                 ["current", "--shell_completion", "bash"]):
        code, out, err = run(capsys, *argv)
        assert code == 2, argv
        assert "unrecognized arguments: --shell_completion" in \
            one_error_line(err), argv


def test_upstream_logging_options_are_accepted(capsys, api, conf_file,
                                               tmp_path):
    """Mistral's logging options (oslo.log's names and short forms) are
    accepted before the command; -v is the global logging option while
    `current --verbose` keeps its own meaning."""
    code, out, err = run(capsys, "-d", "-v", "--log-file",
                         str(tmp_path / "x.log"), "--logdir", str(tmp_path),
                         "--use-syslog", "--nouse-syslog",
                         "--config-file", conf_file, "current")
    assert code == 0, err
    assert (tmp_path / "x.log").exists()
    assert out == "045 (head)\n"
    code, out, err = run(capsys, "--config-file", conf_file, "current",
                         "-v")
    assert code == 0 and out.startswith("Current revision(s) for ")


def test_verbose_logs_other_libraries_info_lines(capsys, api, conf_file):
    """Without -v only our own INFO records reach stderr; with it every
    library's (oslo.log's meaning of verbose: INFO level)."""
    def chatty(settings, progress=None):
        logging.getLogger("alembic.runtime.migration").info(
            "Running upgrade 001 -> 002")
        logging.getLogger("mistral_db_flows.tasks.migrate").info(
            "retrying")
        return results.Run("verify", "verified", "045", "045")

    api.verify = chatty
    code, out, err = run(capsys, "--config-file", conf_file, "verify")
    assert code == 0
    assert "retrying" in err and "Running upgrade" not in err
    code, out, err = run(capsys, "--config-file", conf_file, "-v",
                         "verify")
    assert "retrying" in err and "Running upgrade 001 -> 002" in err


def test_broken_pipe_is_exit_141_without_a_line(capsys, api, conf_file):
    """A reader that closed stdout: exit 141, no error line."""
    api.error = BrokenPipeError(32, "Broken pipe")
    code, out, err = run(capsys, "--config-file", conf_file, "history")
    assert (code, err) == (141, "")


@pytest.mark.parametrize("argv, warned", [
    (["upgrade", "head", "--no-backup"], True),
    (["stamp", "head", "--no-backup"], False),
    (["populate", "--no-backup"], False),
])
def test_no_backup_warns_only_where_a_backup_is_taken(capsys, api,
                                                      conf_file, argv,
                                                      warned):
    """stamp and populate undo their own writes and take no backup:
    --no-backup changes nothing there, so it warns of nothing."""
    code, _, err = run(capsys, "--config-file", conf_file, *argv)
    assert code == 0
    assert ("--no-backup" in err) is warned
    assert api.calls[-1][1][0].backup == "none"


def test_populate_remove_missing_reaches_the_settings(capsys, api,
                                                      conf_file):
    """populate --remove-missing sets populate_remove_missing."""
    run(capsys, "--config-file", conf_file, "populate")
    assert api.calls[-1][1][0].populate_remove_missing is False
    run(capsys, "--config-file", conf_file, "populate", "--remove-missing")
    assert api.calls[-1][1][0].populate_remove_missing is True
