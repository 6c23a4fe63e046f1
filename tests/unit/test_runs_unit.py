"""The run engine's decisions, without a database.

How a run ends (:func:`aftermath.settle`): one test per way it can
end. The lock check between steps (``before_step``, ``Guard.check``):
with tasks that touch nothing and a fake lock.
"""
from __future__ import annotations

import pytest
from taskflow import task

from mistral_db_flows import aftermath
from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import guarding
from mistral_db_flows import runs
from mistral_db_flows import states
from mistral_db_flows.results import Outcome

RunState = states.RunState
BACKUP = {"path": "/b/mistral-045.sql"}


def failed(**facts):
    defaults = dict(operation="upgrade", failed=True,
                    failed_step="migrate_013", starts_with_backup=True,
                    backup=BACKUP, restores=True,
                    backup_step=states.StepState.REVERTED,
                    end_revision="012")
    defaults.update(facts)
    return aftermath.settle(aftermath.Facts(**defaults))


# -- settle: success -------------------------------------------------------

@pytest.mark.parametrize("operation, done", [
    ("upgrade", Outcome.UPGRADED), ("stamp", Outcome.STAMPED),
    ("populate", Outcome.POPULATED), ("populate_actions", Outcome.POPULATED),
    ("verify", Outcome.VERIFIED), ("embedders_own", Outcome.DONE)])
def test_a_run_that_moved_says_what_its_operation_did(operation, done):
    settled = aftermath.settle(aftermath.Facts(operation, failed=False))
    assert settled == aftermath.Settled(done, RunState.FINISHED)


@pytest.mark.parametrize("operation", ["upgrade", "stamp"])
def test_an_upgrade_or_stamp_that_did_not_move_is_unchanged(operation):
    settled = aftermath.settle(aftermath.Facts(operation, failed=False,
                                               unchanged=True))
    assert settled == aftermath.Settled(Outcome.UNCHANGED,
                                        RunState.FINISHED)


def test_a_populate_that_left_the_revision_is_still_populated():
    """populate never moves the revision: that is not "unchanged"."""
    settled = aftermath.settle(aftermath.Facts("populate", failed=False,
                                               unchanged=True))
    assert settled.run_state is Outcome.POPULATED


# -- settle: failure -------------------------------------------------------

def test_a_failed_verify_is_failed_with_nothing_left_to_do():
    settled = failed(operation="verify", failed_step="verify",
                     starts_with_backup=False, backup=None,
                     backup_step=None)
    assert settled == aftermath.Settled(RunState.FAILED, RunState.FAILED)


def test_a_failed_first_backup_changed_nothing():
    settled = failed(failed_step="backup", backup=None,
                     backup_step=states.StepState.FAILED)
    assert settled == aftermath.Settled(RunState.FAILED, RunState.FAILED,
                                        "nothing was changed")


def test_a_backup_that_is_not_the_first_step_does_not_claim_nothing():
    """An embedder's flow may change things before its backup."""
    settled = failed(failed_step="backup", starts_with_backup=False,
                     backup=None, backup_step=states.StepState.FAILED)
    assert settled.run_state is RunState.STOPPED


def test_a_restored_run_is_reverted_and_names_its_backup():
    settled = failed()
    assert settled == aftermath.Settled(
        RunState.REVERTED, RunState.REVERTED,
        "the database was restored from the backup /b/mistral-045.sql")


def test_a_new_sqlite_file_removed_is_reverted_without_a_path():
    """A SQLite database the run created has no backup file: its
    "restore" removes the file."""
    settled = failed(backup={"path": None, "created": True})
    assert settled == aftermath.Settled(
        RunState.REVERTED, RunState.REVERTED,
        "the database file it created was removed")


def test_a_failed_restore_is_revert_failed_and_recorded_resumable():
    settled = failed(backup_step=states.StepState.REVERT_FAILED)
    assert settled.run_state is RunState.REVERT_FAILED
    assert settled.logbook_state is RunState.STOPPED
    assert settled.logbook_facts == {"backup": BACKUP,
                                     "revert_failed": True}
    assert settled.aftermath == (
        "restoring the backup /b/mistral-045.sql failed too: restore it "
        "by hand (see docs/safety.md)")


@pytest.mark.parametrize("facts", [
    {"restores": False},                     # --on-failure stop
    {"backup": None, "backup_step": None},   # no backup step at all
    {"backup_step": states.StepState.DONE},  # the revert never got there
], ids=["stop", "no-backup", "not-reverted"])
def test_otherwise_the_run_stops_where_it_is_resumable(facts):
    settled = failed(**facts)
    assert settled.run_state is RunState.STOPPED
    assert settled.logbook_state is RunState.STOPPED
    assert settled.logbook_facts == {"backup": facts.get("backup",
                                                         BACKUP)}
    assert settled.aftermath == (
        "the database was left as it is (at 012) for inspection: run the "
        "same command to resume, or `abandon`")


def test_a_self_reverting_run_without_a_backup_is_reverted():
    """populate/stamp take no dump: with --on-failure revert their own
    steps undid the change, so the run is reverted, not stopped."""
    settled = failed(operation="populate", failed_step="verify",
                     backup=None, backup_step=states.StepState.REVERTED,
                     restores=False, self_reverting=True, undoes=True)
    assert settled.run_state is RunState.REVERTED
    assert settled.logbook_state is RunState.REVERTED
    assert settled.aftermath == ("each step undid its own change: the "
                                 "database is as before")


def test_a_self_reverting_run_with_on_failure_stop_stops():
    settled = failed(operation="stamp", backup=None, backup_step=None,
                     restores=False, self_reverting=True, undoes=False)
    assert settled.run_state is RunState.STOPPED


def test_a_stopped_run_at_no_revision_says_base():
    settled = failed(restores=False, end_revision=None)
    assert "(at base)" in settled.aftermath


def test_steps_that_reverted_themselves_say_so_without_a_backup():
    """backup = steps: no dump, each step undid its change: reverted,
    saying where the database is."""
    settled = failed(backup=None, backup_step=states.StepState.REVERTED,
                     steps_revert=True)
    assert settled == aftermath.Settled(
        RunState.REVERTED, RunState.REVERTED,
        "each step undid its own change: the database is as before "
        "(at 012)")


def test_a_step_revert_that_failed_is_recorded_for_the_next_run():
    """A step's revert raised: revert_failed, recorded stopped with the
    step, so the next command finishes the revert from the journal."""
    settled = failed(backup=None, steps_revert=True,
                     revert_failed_step="migrate_013")
    assert (settled.run_state, settled.logbook_state) == (
        RunState.REVERT_FAILED, RunState.STOPPED)
    assert settled.logbook_facts["step_revert_failed"] == "migrate_013"
    assert "reverting migrate_013 failed too" in settled.aftermath
    assert "run the same command" in settled.aftermath


def test_with_stop_steps_that_did_not_revert_stop():
    """--on-failure stop with backup = steps: nothing reverted (the
    facts say steps_revert False), the run stops resumable."""
    settled = failed(backup=None, restores=False, steps_revert=False)
    assert settled.run_state is RunState.STOPPED


# -- the lock check between steps ------------------------------------------

class Note(task.Task):
    def execute(self, ran):
        ran.append(self.name)


def three_steps():
    from taskflow.patterns import linear_flow

    return linear_flow.Flow("mistral-db-test").add(
        Note("one"), Note("two"), Note("three"))


def test_before_step_is_asked_before_every_step():
    ran, asked = [], []
    outcome = flows.run(three_steps(), store={"ran": ran},
                        before_step=lambda: asked.append(list(ran)))
    assert outcome.cause is None and ran == ["one", "two", "three"]
    # Before each step, never inside one (the last: before game over).
    assert asked[:3] == [[], ["one"], ["one", "two"]]


def test_a_failed_check_stops_before_the_next_step_resumable():
    """The step running when the lock went away finishes; the next does
    not start; the flow is suspended (so TaskFlow can resume it) and
    the check's error is raised."""
    ran = []

    def check():
        if ran:
            raise exceptions.LockLost(database="d", reason="gone")

    flow = three_steps()
    with pytest.raises(exceptions.LockLost) as err:
        flows.run(flow, store={"ran": ran}, before_step=check)
    assert ran == ["one"]
    assert err.value.exit_code == exceptions.ExitCode.LOCKED


class FakeLock:
    def __init__(self, error=None):
        self.error, self.checks = error, 0

    def check(self):
        self.checks += 1
        if self.error is not None:
            raise self.error


def test_guard_check_passes_while_the_lock_is_held():
    lock = FakeLock()
    guarding.Guard(lock, store=None).check()
    assert lock.checks == 1


def test_guard_check_turns_a_lost_lock_into_lock_lost():
    cause = exceptions.LockError("lost the lock on database m",
                                 database="m")
    with pytest.raises(exceptions.LockLost) as err:
        guarding.Guard(FakeLock(cause), store=None).check()
    assert err.value.database == "m"
    assert err.value.reason == "lost the lock on database m"
    assert err.value.__cause__ is cause
    assert err.value.exit_code == exceptions.ExitCode.LOCKED
    assert str(err.value).startswith(
        "lost the lock on database m; the run stopped without committing "
        "anything more and reverted nothing")


def test_guard_fence_halts_the_step_instead_of_failing_it():
    """Inside a step (before its commit) a lost lock is StepHalted, a
    BaseException TaskFlow does not turn into a revert, carrying the
    LockLost the CLI reports."""
    cause = exceptions.LockError("lost the lock on database m",
                                 database="m")
    with pytest.raises(exceptions.StepHalted) as err:
        guarding.Guard(FakeLock(cause), store=None).fence()
    assert isinstance(err.value.error, exceptions.LockLost)
    assert not isinstance(err.value, Exception)
    guarding.Guard(FakeLock(), store=None).fence()  # held: nothing happens


class FakeAtom:
    def __init__(self, name, state):
        self.name, self.state = name, state
        self.failure = self.results = None


class FakeFlowDetail(list):
    def __init__(self, meta, atoms):
        super().__init__(atoms)
        self.meta = meta


def _interrupted_upgrade(**meta):
    return FakeFlowDetail(
        dict({"operation": "upgrade", "state": "running",
              "plan": {"start": "030", "target": "045",
                       "pending": ["031", "032"]}}, **meta),
        [FakeAtom("migrate_031", "SUCCESS"),
         FakeAtom("migrate_032", "RUNNING")])


def test_a_run_that_lost_its_lock_while_failing_is_never_resumed():
    """Its revert could undo what the run that took the lock did: the
    resume is refused (exit 12), saying to check and abandon, never to
    run the command again."""
    from mistral_db_flows import resume

    requested = flows.Plan("031", "045", ("032",))
    assert resume.resume_plan(_interrupted_upgrade(), "upgrade",
                              requested).target == "045"
    with pytest.raises(exceptions.ResumeRefused) as err:
        resume.resume_plan(
            _interrupted_upgrade(**{resume.LOST_LOCK_FAILING: True}),
            "upgrade", requested)
    assert err.value.exit_code == 12
    assert "lost its lock after a step failed" in str(err.value)
    assert str(err.value).endswith(
        "then `abandon` that run and run the command again")
    assert "to resume it" not in str(err.value)
