"""How a run ended: the states its Run and its logbook record take,
and what is left for the operator, from what its flow's run ended with.

No database and no TaskFlow here: :func:`runs.execute` gathers the
facts, :func:`settle` decides.
"""
from __future__ import annotations

import dataclasses

from mistral_db_flows import results
from mistral_db_flows import states


@dataclasses.dataclass(frozen=True)
class Facts:
    """What a flow's run ended with, as :func:`settle` needs it."""

    operation: str
    failed: bool
    failed_step: str | None = None
    # The flow's first step is the backup.
    starts_with_backup: bool = False
    # The run's backup (the backup step's result), if one was taken.
    backup: dict | None = None
    # --on-failure restore (else stop, leaving the database as it is).
    restores: bool = True
    backup_step: str | None = None
    # Every step of the operation undoes its own change on revert (no
    # dump needed), and --on-failure asks for it (``undoes``).
    self_reverting: bool = False
    undoes: bool = False
    # The database's revision did not move (and the run was not resumed).
    unchanged: bool = False
    end_revision: str | None = None
    # The steps revert themselves (a per-step journal, no dump needed).
    steps_revert: bool = False
    # A step (not the backup) whose revert failed.
    revert_failed_step: str | None = None


@dataclasses.dataclass(frozen=True)
class Settled:
    """How a run ended: its Run's state, the logbook's, and what is left
    for the operator (None: nothing to say)."""

    run_state: results.Outcome | states.RunState
    logbook_state: states.RunState
    aftermath: str | None = None
    logbook_facts: dict = dataclasses.field(default_factory=dict)


def settle(facts: Facts) -> Settled:
    """The run's end from what its flow's run ended with."""
    if not facts.failed:
        done = (results.Outcome.UNCHANGED
                if facts.operation in ("upgrade", "stamp", "downgrade")
                and facts.unchanged
                else results.Outcome.succeeded(facts.operation))
        return Settled(done, states.RunState.FINISHED)
    failed = states.RunState.FAILED
    if facts.operation == "verify":
        # Read-only: nothing to restore or resume.
        return Settled(failed, failed)
    if facts.failed_step == "backup" and facts.starts_with_backup:
        return Settled(failed, failed, "nothing was changed")
    taken = facts.backup or {}
    if facts.backup and facts.restores \
            and facts.backup_step == states.StepState.REVERTED:
        reverted = states.RunState.REVERTED
        return Settled(reverted, reverted,
                       "the database was restored from the backup %s"
                       % taken["path"] if taken.get("path") else
                       "the database file it created was removed")
    if facts.self_reverting and facts.undoes and not taken \
            and facts.backup_step in (None, states.StepState.REVERTED):
        reverted = states.RunState.REVERTED
        return Settled(reverted, reverted, "each step undid its own "
                       "change: the database is as before")
    stopped = states.RunState.STOPPED
    if facts.steps_revert and facts.revert_failed_step:
        # The journal is still in the database: the next run finishes
        # the revert before anything else (interrupted.finish_revert).
        return Settled(states.RunState.REVERT_FAILED, stopped,
                       "reverting %s failed too: run the same command to "
                       "finish the revert (see docs/safety.md)"
                       % facts.revert_failed_step,
                       {"backup": facts.backup, "step_revert_failed":
                        facts.revert_failed_step})
    if facts.steps_revert and not facts.backup:
        reverted = states.RunState.REVERTED
        return Settled(reverted, reverted,
                       "each step undid its own change: the database is "
                       "as before (at %s)" % (facts.end_revision or "base"))
    if facts.backup_step == states.StepState.REVERT_FAILED:
        # Recorded as stopped (resumable): the next run retries the
        # restore before anything else (see interrupted.retry_restore).
        return Settled(states.RunState.REVERT_FAILED, stopped,
                       "restoring the backup %s failed too: restore it "
                       "by hand (see docs/safety.md)" % taken.get("path"),
                       {"backup": facts.backup, "revert_failed": True})
    return Settled(stopped, stopped,
                   "the database was left as it is (at %s) for "
                   "inspection: run the same command to resume, or "
                   "`abandon`" % (facts.end_revision or "base"),
                   {"backup": facts.backup})
