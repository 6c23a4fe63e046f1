"""The states of a run and of its steps: one vocabulary, one home.

The logbook records a run's ``RunState``; a ``results.Run`` reports it
when the run failed (``results.Outcome`` says how a run that did not
fail ended); a ``results.Step`` has a ``StepState``. The values are
str, so JSON output and the records of existing logbooks are the same
strings as before these were Enums.

A leaf with no TaskFlow import: ``status`` reads runs without it.
"""
from __future__ import annotations

import enum


class StrEnum(str, enum.Enum):
    """A str-valued Enum that prints as its value (enum.StrEnum is 3.11+;
    before it ``str()`` of a mixed-in Enum gives ``Class.NAME``)."""

    def __str__(self) -> str:
        return str(self.value)


class RunState(StrEnum):
    """Where a recorded run stands (the logbook's ``mdf_state``)."""

    RUNNING = "running"      # in progress, or the process died
    STOPPED = "stopped"      # failed with --on-failure stop: resumable
    FINISHED = "finished"
    REVERTED = "reverted"    # a step failed; the backup was restored
    FAILED = "failed"        # a read-only or backup step failed
    ABANDONED = "abandoned"  # forgotten by `abandon`
    RESUMED = "resumed"      # a stopped run a new run continued
    # A step failed and so did the restore. Only a Run reports it: the
    # logbook records STOPPED with ``revert_failed`` so that the run
    # stays resumable (and older builds read it the same way).
    REVERT_FAILED = "revert_failed"

    @property
    def resumable(self) -> bool:
        """Running the same command again continues this run."""
        return self in (RunState.RUNNING, RunState.STOPPED)

    @classmethod
    def recorded(cls, value: object) -> "RunState | None":
        """The state a record holds; None for none (or an unknown one,
        e.g. written by a newer build: never resumed)."""
        try:
            return cls(value)
        except ValueError:
            return None


class StepState(StrEnum):
    """A step's state in a Run: TaskFlow's atom state, in our words."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REVERTING = "reverting"
    REVERTED = "reverted"
    REVERT_FAILED = "revert_failed"
    RETRYING = "retrying"
    SKIPPED = "skipped"

    @classmethod
    def of_atom(cls, atom_state: object) -> "StepState | None":
        """From a TaskFlow atom state (``"SUCCESS"``...), as TaskFlow
        records it; None for a state TaskFlow did not have when this
        was written."""
        return _OF_ATOM.get(str(atom_state))


# TaskFlow's atom states (taskflow.states), spelled out so that reading
# a logbook needs no TaskFlow import; tests check they are TaskFlow's.
_OF_ATOM = {
    "PENDING": StepState.PENDING,
    "RUNNING": StepState.RUNNING,
    "SUCCESS": StepState.DONE,
    "FAILURE": StepState.FAILED,
    "REVERTING": StepState.REVERTING,
    "REVERTED": StepState.REVERTED,
    "REVERT_FAILURE": StepState.REVERT_FAILED,
    "RETRYING": StepState.RETRYING,
    "IGNORE": StepState.SKIPPED,
}
