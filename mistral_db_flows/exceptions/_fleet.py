"""The fleet: a jobboard that cannot be used, a job that did not end
well on the conductor that ran it."""
from __future__ import annotations

from typing import Any

from mistral_db_flows.exceptions import _base


class JobboardError(_base.MistralDbError):
    """The jobboard (Redis) cannot be reached or used.

    ``jobboard`` is its URL with the password hidden, ``board`` the
    board's name (None when the connection itself failed), ``reason``
    what the client said.
    """

    exit_code = _base.ExitCode.ERROR
    jobboard: str
    board: str | None
    reason: str

    def __init__(self, jobboard: str, reason: str, *,
                 board: str | None = None) -> None:
        self.jobboard, self.board, self.reason = jobboard, board, reason
        where = jobboard if board is None else "%s (board %s)" % (
            jobboard, board)
        super().__init__("jobboard %s cannot be used: %s" % (where, reason))


class JobFailed(_base.MistralDbError):
    """A posted job ended without success on the conductor that ran it.

    The exit code is the one the command itself would have exited with
    on that host (``code``; 7 when the conductor gave no outcome);
    ``error`` is that command's one line, ``run`` its failed run as a
    dict (or None), ``job`` the job's id.
    """

    exit_code = _base.ExitCode.STEP_FAILED
    job: str
    target: str
    operation: str
    error: str
    run: Any

    def __init__(self, job: str, target: str, operation: str, error: str,
                 code: int, run: Any = None) -> None:
        self.job = job
        self.target = target
        self.operation = operation
        self.error = error
        self.run = run
        try:
            self.exit_code = _base.ExitCode(code)
        except ValueError:
            self.exit_code = _base.ExitCode.ERROR
        super().__init__("job %s (%s of target %s): %s"
                         % (job, operation, target, error))
