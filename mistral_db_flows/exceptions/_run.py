"""A guarded run went wrong: a step failed, the backup could not be
made or restored, the logbook could not be used, or an interrupted run
cannot be continued."""
from __future__ import annotations

from mistral_db_flows.exceptions import _base


def _first_line(error: BaseException | str) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    detail = _server_detail(error)
    return "%s (%s)" % (text, detail) if detail else text


def _server_detail(error: BaseException | str) -> str | None:
    """The server's DETAIL (psycopg2's ``diag``), which the first line
    lacks: e.g. the operator's view that keeps a column from changing.
    SQLAlchemy keeps the driver's error as ``orig``."""
    for candidate in (error, getattr(error, "orig", None)):
        diag = getattr(candidate, "diag", None)
        detail = getattr(diag, "message_detail", None)
        if detail:
            return " ".join(str(detail).split())
    return None


class StepFailed(_base.MistralDbError):
    """A step of a flow failed; ``cause`` is the original exception.

    ``run`` is the :class:`results.Run` of the failed run (state
    ``failed``, steps with their states) when the flow was run by us;
    ``aftermath`` says what became of the database. ``restore_error``
    is why restoring the backup failed too (None when it did not); the
    message ends with its first line.

    The exit code says what matters most: the restore failing (9),
    else the cause's own code when it is one of ours (a schema conflict,
    a lost connection, a backup that could not be written), else 7.
    """

    exit_code = _base.ExitCode.STEP_FAILED
    step: str
    cause: BaseException | str
    run: object
    aftermath: str | None
    restore_error: BaseException | str | None

    def __init__(self, step: str, cause: BaseException | str,
                 run: object = None, aftermath: str | None = None,
                 restore_error: BaseException | str | None = None) -> None:
        self.step = step
        self.cause = cause
        self.run = run
        self.aftermath = aftermath
        self.restore_error = restore_error
        if restore_error is not None:
            self.exit_code = _base.ExitCode.RESTORE_FAILED
        elif isinstance(cause, _base.MistralDbError):
            self.exit_code = cause.exit_code
        text = "step %s failed: %s" % (step, _first_line(cause))
        if aftermath:
            text += "; %s" % aftermath
        if restore_error is not None:
            text += "; restore: %s" % _first_line(restore_error)
        super().__init__(text)


class StepHalted(BaseException):
    """Not an error: carries one of ours (``error``, e.g. LockLost) out
    of a running step. TaskFlow treats any Exception a step raises as
    its failure and reverts; a step halted this way is left as a kill
    leaves it (running, resumable), which is what a run that lost its
    lock must do: change nothing more, undo nothing."""

    def __init__(self, error: _base.MistralDbError) -> None:
        super().__init__(str(error))
        self.error = error


class VerifyFailed(_base.MistralDbError):
    """The database is not what the run should have left behind."""

    exit_code = _base.ExitCode.STEP_FAILED
    problems: list[str]

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:5]
        more = len(self.problems) - len(shown)
        super().__init__(
            "verification failed: %s%s" % (
                "; ".join(shown), " (and %d more)" % more if more else ""))


class ResumeRefused(_base.MistralDbError):
    """An interrupted run exists that this command cannot continue.

    ``operation``, ``target`` and ``step`` name the interrupted run; the
    way out is to run its command again, or ``abandon`` it, unless
    ``advice`` says otherwise (the run must not be continued at all).
    """

    exit_code = _base.ExitCode.RESUME_REFUSED
    reason: str
    operation: str
    target: str | None
    step: str | None
    advice: str | None

    def __init__(self, reason: str, *, operation: str,
                 target: str | None, step: str | None,
                 advice: str | None = None) -> None:
        self.reason = reason
        self.operation = operation
        self.target = target
        self.step = step
        self.advice = advice
        way_out = advice or (
            "run `%s%s` to resume it, or `abandon` to forget it (the "
            "database stays as it is)" % (
                operation, " %s" % target if target and operation in (
                    "upgrade", "stamp") else ""))
        super().__init__(
            "%s; an interrupted %s%s stopped at step %s: %s"
            % (reason, operation, " to %s" % target if target else "",
               step or "?", way_out))


class LogbookError(_base.MistralDbError):
    """The run logbook, a file in the state directory, cannot be read
    or written (full disk, no permission, a damaged file or record).

    ``path`` is the file, ``problem`` what the system or SQLite said;
    ``advice`` the way out, when the raiser knows better than the
    default for a full disk or a damaged file.
    """

    exit_code = _base.ExitCode.ERROR
    path: str
    problem: str

    def __init__(self, path: str, problem: str,
                 advice: str | None = None) -> None:
        self.path = path
        self.problem = problem
        if advice is None and ("full" in problem or "space" in problem):
            advice = ("free space there, then run the same command again "
                      "(an interrupted run resumes)")
        elif advice is None:
            advice = ("fix its directory ([db_manage] state_dir), or move "
                      "a damaged file away (the runs it recorded are "
                      "then forgotten)")
        super().__init__("the run logbook %s cannot be used: %s; %s"
                         % (path, problem, advice))


class _BackupFacts(_base.MistralDbError):
    """What backup and restore errors tell.

    ``reason`` is a short machine-readable word: ``tool-missing``,
    ``tool-version``, ``tool-failed``, ``no-space``, ``no-permission``,
    ``write-failed``, ``unreachable``, ``unsupported``, ``mismatch``,
    ``unusable-backup``, ``checksum-mismatch``, ``lock-timeout``.
    ``database`` names the database without credentials, ``path`` the
    backup file (or its directory), ``tool`` the program concerned.
    Messages never hold a password.
    """

    reason: str
    database: str | None
    path: str | None
    tool: str | None

    def __init__(self, message: str, *, reason: str,
                 database: str | None = None, path: str | None = None,
                 tool: str | None = None) -> None:
        self.reason = reason
        self.database = database
        self.path = path
        self.tool = tool
        super().__init__(message)


class BackupError(_BackupFacts):
    """A backup cannot be made; the database has not been changed.

    For ``no-space`` found before the backup, ``needed`` and ``free``
    are the bytes estimated and available.
    """

    exit_code = _base.ExitCode.BACKUP_FAILED
    needed: int | None
    free: int | None

    def __init__(self, message: str, *, reason: str,
                 database: str | None = None, path: str | None = None,
                 tool: str | None = None, needed: int | None = None,
                 free: int | None = None) -> None:
        self.needed = needed
        self.free = free
        super().__init__(message, reason=reason, database=database,
                         path=path, tool=tool)


class RestoreError(_BackupFacts):
    """A backup could not be restored into the database.

    ``changed`` says whether the database may have been touched: False
    when the restore was refused before anything was dropped. For
    ``lock-timeout``, ``table`` is what was locked (None when the server
    did not say) and ``lock_wait`` the seconds waited.
    """

    exit_code = _base.ExitCode.RESTORE_FAILED
    changed: bool
    table: str | None
    lock_wait: float | None

    def __init__(self, message: str, *, reason: str,
                 database: str | None = None, path: str | None = None,
                 tool: str | None = None, changed: bool = False,
                 table: str | None = None,
                 lock_wait: float | None = None) -> None:
        self.changed = changed
        self.table = table
        self.lock_wait = lock_wait
        super().__init__(message, reason=reason, database=database,
                         path=path, tool=tool)
