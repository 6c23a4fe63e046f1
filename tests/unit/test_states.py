"""The run and step state vocabulary, and what results make of it."""
from __future__ import annotations

import json

import pytest
from taskflow import states as tf_states

from mistral_db_flows import results
from mistral_db_flows import states


def test_run_states_are_the_strings_logbooks_hold():
    """The values are the ones logbooks of earlier builds recorded (and
    that Run.state and JSON output carried): they must never change."""
    assert {s.name: s.value for s in states.RunState} == {
        "RUNNING": "running", "STOPPED": "stopped",
        "FINISHED": "finished", "REVERTED": "reverted",
        "FAILED": "failed", "ABANDONED": "abandoned",
        "RESUMED": "resumed", "REVERT_FAILED": "revert_failed"}
    for state in states.RunState:
        assert states.RunState.recorded(state.value) is state
        assert state == state.value and str(state) == state.value
        assert "%s" % state == "{}".format(state) == state.value


def test_only_running_and_stopped_runs_resume():
    """A run that died (running) or stopped on a failure is continued
    by the same command; any other state has ended."""
    assert {s for s in states.RunState if s.resumable} == {
        states.RunState.RUNNING, states.RunState.STOPPED}


@pytest.mark.parametrize("value", [None, "", "from-a-newer-build", 3])
def test_a_missing_or_unknown_recorded_state_is_none(value):
    """A record without a state, or with one this build does not know,
    is never taken for a run to resume."""
    assert states.RunState.recorded(value) is None


def test_step_states_cover_taskflows_atom_states():
    """Every atom state TaskFlow has maps to a step state, and the names
    spelled out for TaskFlow-free reading are TaskFlow's own."""
    atom_states = {tf_states.PENDING, tf_states.RUNNING, tf_states.SUCCESS,
                   tf_states.FAILURE, tf_states.REVERTING,
                   tf_states.REVERTED, tf_states.REVERT_FAILURE,
                   tf_states.RETRYING, tf_states.IGNORE}
    assert {a: str(states.StepState.of_atom(a)) for a in atom_states} == {
        "PENDING": "pending", "RUNNING": "running", "SUCCESS": "done",
        "FAILURE": "failed", "REVERTING": "reverting",
        "REVERTED": "reverted", "REVERT_FAILURE": "revert_failed",
        "RETRYING": "retrying", "IGNORE": "skipped"}
    assert states.StepState.of_atom("NOT_A_STATE") is None


def test_a_successful_run_names_what_its_operation_did():
    """upgrade -> upgraded ...; an embedder's operation is done."""
    assert {op: results.Outcome.succeeded(op).value for op in (
        "upgrade", "stamp", "populate", "populate_actions", "verify",
        "my-tool")} == {
        "upgrade": "upgraded", "stamp": "stamped", "populate": "populated",
        "populate_actions": "populated", "verify": "verified",
        "my-tool": "done"}


def test_json_of_a_run_is_what_plain_strings_gave():
    """The Enums change no byte of the JSON output (as the CLI writes
    it: indented, default=str)."""
    def dump(run: results.Run) -> str:
        return json.dumps(run.to_dict(), indent=2, default=str)

    for state, plain in [(results.Outcome.UPGRADED, "upgraded"),
                         (states.RunState.REVERT_FAILED, "revert_failed")]:
        with_enums = results.Run(
            "upgrade", state, "030", "031",
            [results.Step("backup", states.StepState.DONE, 0.1),
             results.Step("migrate_031", states.StepState.FAILED)])
        with_strings = results.Run(
            "upgrade", plain, "030", "031",  # type: ignore[arg-type]
            [results.Step("backup", "done", 0.1),
             results.Step("migrate_031", "failed")])
        assert dump(with_enums) == dump(with_strings)
        assert json.dumps(with_enums.to_dict()) == json.dumps(
            with_strings.to_dict())


@pytest.mark.parametrize("pending, interrupted, needed", [
    ([], None, False),
    (["045"], None, True),
    ([], {"operation": "upgrade", "target": "045", "step": "migrate_031",
          "state": states.RunState.RUNNING}, True),
    ([], {"operation": "populate", "target": "045", "step": "populate",
          "state": states.RunState.STOPPED}, True)])
def test_an_interrupted_run_needs_the_command_again(pending, interrupted,
                                                    needed):
    """upgrade_needed also when nothing is pending but a run (of any
    operation) is interrupted: running the command again resumes it."""
    status = results.Status("045" if not pending else "044", "045",
                            pending, interrupted)
    assert status.upgrade_needed is needed
    assert status.to_dict()["upgrade_needed"] is needed
