"""In-step progress: from a task's TaskFlow notifications to stderr."""
from __future__ import annotations

import io

from taskflow import task as tf_task
from taskflow.patterns import linear_flow

from mistral_db_flows import console
from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows.cli import commands


class Copying(tf_task.Task):
    def execute(self):
        for done in (10, 20):
            self.notifier.notify(tf_task.EVENT_UPDATE_PROGRESS, {
                "progress": done / 40, "done": done, "total": 40})
        return None


class CopyingInAThread(tf_task.Task):
    TASK_EVENTS = tf_task.Task.TASK_EVENTS + (flows.STEP_PROGRESS,)

    def execute(self):
        import threading

        worker = threading.Thread(target=lambda: self.notifier.notify(
            flows.STEP_PROGRESS, {"progress": 0.5, "done": 5, "total": 10}))
        worker.start()
        worker.join()


def test_progress_from_a_task_s_own_thread_reaches_the_listener():
    """STEP_PROGRESS is for reports from other threads: only flows.run's
    listener hears it (TaskFlow's engine, which would save it in the
    logbook from that thread, does not subscribe)."""
    heard = []
    flow = linear_flow.Flow("f").add(CopyingInAThread("copy"))
    flows.run(flow, progress=lambda *event: heard.append(event))
    assert [e for e in heard if e[1] == "progress"] == [
        ("copy", "progress", {"progress": 0.5, "done": 5, "total": 10})]


def test_a_task_s_progress_reaches_the_run_s_listener():
    heard = []
    flow = linear_flow.Flow("f").add(Copying("copy"))
    flows.run(flow, progress=lambda *event: heard.append(event))
    assert [e for e in heard if e[1] == "progress"] == [
        ("copy", "progress", {"progress": 0.25, "done": 10, "total": 40}),
        ("copy", "progress", {"progress": 0.5, "done": 20, "total": 40})]
    # Listening stops with the run: a second run is heard once.
    heard.clear()
    flows.run(flow, progress=lambda *event: heard.append(event))
    assert len([e for e in heard if e[1] == "progress"]) == 2


def _output(monkeypatch, terminal, verbose=True):
    err = io.StringIO()
    monkeypatch.setattr(console.sys, "stderr", err)
    out = console.Output("text", False, verbose)
    out.terminal = terminal
    # The heartbeat is driven by hand here (see _heartbeat tests).
    monkeypatch.setattr(out, "_start_ticker", lambda: None)
    return out, err


def test_a_terminal_redraws_one_progress_line(monkeypatch):
    out, err = _output(monkeypatch, terminal=True, verbose=False)
    out.progress("backup", "running", None)
    out.progress("backup", "progress", {"progress": 0.5,
                                        "done": 5 * 1024 ** 2,
                                        "total": 10 * 1024 ** 2})
    out.progress("backup", "progress", {"progress": 0.0, "done": 2048,
                                        "total": None})
    out.progress("backup", "success", 1.5)
    text = err.getvalue()
    assert "\r\033[Kbackup: 5.0 MiB of 10.0 MiB (50%)" in text
    assert "\r\033[Kbackup: 2.0 KiB so far" in text
    # The line is cleared before the step's last word.
    assert text.endswith("\r\033[Kbackup: done in 1.50 s\n")


def test_off_a_terminal_progress_is_a_line_every_few_seconds(monkeypatch):
    out, err = _output(monkeypatch, terminal=False, verbose=True)
    clock = [100.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    out.progress("restore", "reverting", None)
    for clock[0] in (101.0, 105.0, 110.5, 115.0, 121.0):
        out.progress("restore", "progress", {"progress": clock[0] / 200,
                                             "done": int(clock[0]),
                                             "total": 200})
    lines = err.getvalue().splitlines()
    assert lines == ["restore: reverting",
                     "restore: 110 B of 200 B (55%)",
                     "restore: 121 B of 200 B (60%)"]
    assert "\r" not in err.getvalue()


def _status_text(monkeypatch, interrupted):
    from mistral_db_flows import results

    class Api:
        @staticmethod
        def status(settings):
            return results.Status(current="009", head="045",
                                  pending=["010"], interrupted=interrupted)

    monkeypatch.setattr(commands, "_api", lambda: Api)
    out = console.Output("text", False)
    out.stdout = io.StringIO()
    code = commands.run_status(None, None, out)
    return code, out.stdout.getvalue()


def test_status_tells_a_running_run_from_an_interrupted_one(monkeypatch):
    run = {"operation": "upgrade", "target": "045", "step": "migrate_010",
           "state": "running", "in_progress": True,
           "holder": {"pid": 4242, "client": "db1"}}
    code, text = _status_text(monkeypatch, run)
    assert code == exceptions.ExitCode.UPGRADE_NEEDED
    assert ("run in progress: upgrade to 045, at step migrate_010, by "
            "pid 4242 (db1); wait for it to finish") in text
    code, text = _status_text(monkeypatch, dict(run, in_progress=False))
    assert "interrupted run: upgrade to 045, stopped at step migrate_010 " \
        "(running); run the same command to resume" in text


def test_a_silent_long_step_shows_how_long_it_has_run(monkeypatch):
    out, err = _output(monkeypatch, terminal=False)
    clock = [1000.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    out.progress("migrate_020", "running", None)
    for now in (1003.0, 1006.0, 1012.0, 1016.0, 1027.0):
        out._heartbeat(now)
    clock[0] = 1030.0
    out.progress("migrate_020", "success", 30.0)
    out._heartbeat(1040.0)  # ended: nothing more
    assert err.getvalue().splitlines() == [
        "migrate_020: started",
        "migrate_020: running for 12 s",
        "migrate_020: running for 27 s",
        "migrate_020: done in 30.00 s"]


def test_on_a_terminal_the_heartbeat_is_redrawn_and_cleared(monkeypatch):
    out, err = _output(monkeypatch, terminal=True)
    monkeypatch.setattr(console.time, "monotonic", lambda: 50.0)
    out.progress("migrate_020", "running", None)
    out._heartbeat(53.0)
    out._heartbeat(57.0)
    out._heartbeat(58.0)
    out.progress("migrate_020", "success", 8.0)
    assert err.getvalue() == (
        "migrate_020: started\n"
        "\r\033[Kmigrate_020: running for 7 s"
        "\r\033[Kmigrate_020: running for 8 s"
        "\r\033[Kmigrate_020: done in 8.00 s\n")


def test_the_heartbeat_thread_stops_with_the_command(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(console.sys, "stderr", err)
    out = console.Output("text", False)
    out.progress("verify", "running", None)
    assert out._ticker is not None and out._ticker.is_alive()
    out.close()
    assert out._ticker is None


def test_quiet_by_default_a_fast_step_prints_nothing(monkeypatch):
    """Without --verbose a step that starts and ends quickly prints no
    line; with it, both its lines."""
    for verbose, expected in ((False, []),
                              (True, ["migrate_001: started",
                                      "migrate_001: done in 0.40 s"])):
        out, err = _output(monkeypatch, terminal=False, verbose=verbose)
        out.progress("migrate_001", "running", None)
        out.progress("migrate_001", "success", 0.4)
        assert err.getvalue().splitlines() == expected, verbose


def test_quiet_a_slow_step_shows_its_running_time_and_end(monkeypatch):
    """Without --verbose, a step past SLOW_STEP seconds shows the
    heartbeat and then its end line, but no start line."""
    out, err = _output(monkeypatch, terminal=False, verbose=False)
    clock = [1000.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    out.progress("migrate_031", "running", None)
    out._heartbeat(1012.0)
    clock[0] = 1013.0
    out.progress("migrate_031", "success", 13.0)
    assert err.getvalue().splitlines() == [
        "migrate_031: running for 12 s",
        "migrate_031: done in 13.00 s"]


def test_quiet_failures_and_real_reverts_are_always_shown(monkeypatch):
    """A failure and a revert that undid something are shown; a revert
    with nothing to undo (read-only steps, a backup not restored) and
    every start are not."""
    out, err = _output(monkeypatch, terminal=False, verbose=False)
    for step, event, value in [
            ("verify", "running", None), ("verify", "failure", 0.01),
            ("verify", "reverting", None),
            ("verify", "nothing_to_revert", 0.0),
            ("check_branches", "reverting", None),
            ("check_branches", "nothing_to_revert", 0.0),
            ("backup", "reverting", None), ("backup", "reverted", 0.2)]:
        out.progress(step, event, value)
    assert err.getvalue().splitlines() == [
        "verify: failed in 0.01 s", "backup: reverted in 0.20 s"]


def test_verbose_says_when_a_revert_had_nothing_to_undo(monkeypatch):
    out, err = _output(monkeypatch, terminal=False, verbose=True)
    out.progress("verify", "reverting", None)
    out.progress("verify", "nothing_to_revert", 0.0)
    assert err.getvalue().splitlines() == [
        "verify: reverting", "verify: reverted (nothing to undo) in 0.00 s"]


def test_a_resumed_run_says_where_it_resumes(monkeypatch):
    out, err = _output(monkeypatch, terminal=False, verbose=False)
    out.progress("migrate_030", "resuming", "d710dfe8")
    out.progress(None, "resuming", "0c1e")
    assert err.getvalue().splitlines() == [
        "resuming run d710dfe8 at step migrate_030",
        "resuming run 0c1e at its first step"]


class Failing(tf_task.Task):
    def execute(self):
        raise RuntimeError("boom")


class ReadOnly(tf_task.Task):
    def execute(self):
        return None


class Restoring(tf_task.Task):
    def execute(self):
        return None

    def revert(self, *args, **kwargs):
        return {"restored": "/backups/x.sqlite"}


def test_a_revert_that_returns_nothing_is_reported_as_nothing_to_revert():
    """flows.run tells a revert that undid something (it returned what)
    from one that had nothing to undo (it returned None)."""
    heard = []
    flow = linear_flow.Flow("f").add(Restoring("backup"), ReadOnly("check"),
                                     Failing("verify"))
    outcome = flows.run(flow, progress=lambda *e: heard.append(e[:2]))
    assert outcome.failed_step == "verify"
    ends = [e for e in heard if e[1] in ("reverted", "nothing_to_revert")]
    assert ends == [("verify", "nothing_to_revert"),
                    ("check", "nothing_to_revert"),
                    ("backup", "reverted")]
