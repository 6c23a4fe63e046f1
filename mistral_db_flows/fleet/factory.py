"""The conductor-ready factory: a job's flow, rebuilt on any host.

:func:`flow_factory` takes JSON-able arguments only (the target's name,
the operation, its argument), so TaskFlow can record it with
``engines.save_factory_details`` and a conductor on any host can call
it again. The flow it returns has one task, :class:`RunJob`, which
runs the operation exactly as the command does (``api.upgrade`` ...):
the database's lock is held for the whole run, the backup is taken,
and every step is recorded as a run of that database in the shared
logbook (``[db_manage] logbook_connection``). A conductor that takes
over a dead one's job runs RunJob again, and the run resumes from that
logbook where the dead conductor stopped; the run's own fingerprint
check refuses a changed flow.

Where the host reads the target's connection comes from the engine's
store (``fleet_host``: a :class:`hosts.Host`, paths only), put there by
the conductor; the job and its logbook never hold a URL or a secret.
"""
from __future__ import annotations

import logging
from typing import Any

from taskflow import task
from taskflow.patterns import linear_flow

from mistral_db_flows import exceptions
from mistral_db_flows.fleet import hosts

LOG = logging.getLogger(__name__)

# The operation a job may ask for, and whether it takes an argument.
OPERATIONS = {"upgrade": True, "stamp": True, "populate": False,
              "verify": False}
HOST_KEY = "fleet_host"
FLOW_NAME = "mistral-db-job"


def check_job(target: str, operation: str, argument: str | None) -> None:
    """A job's arguments, refused with UsageError when they are bad."""
    hosts.check_target_name(target)
    if operation not in OPERATIONS:
        raise exceptions.UsageError(
            "operation %r: use one of %s"
            % (operation, ", ".join(sorted(OPERATIONS))))
    if OPERATIONS[operation] and not argument:
        raise exceptions.UsageError(
            "%s needs a revision (e.g. '%s head')" % (operation, operation))
    if not OPERATIONS[operation] and argument:
        raise exceptions.UsageError(
            "%s takes no argument (got %r)" % (operation, argument))


def flow_factory(target: str, operation: str,
                 argument: str | None = None) -> Any:
    """The flow of one job (for ``engines.save_factory_details``)."""
    check_job(target, operation, argument)
    flow = linear_flow.Flow(FLOW_NAME)
    flow.add(RunJob(target, operation, argument))
    return flow


def run_operation(settings: Any, operation: str, argument: str | None,
                  progress: Any = None) -> Any:
    """The api function of ``operation``, run on ``settings``."""
    from mistral_db_flows import api

    if operation == "upgrade":
        return api.upgrade(settings, argument, progress=progress)
    if operation == "stamp":
        return api.stamp(settings, argument, progress=progress)
    if operation == "populate":
        return api.populate(settings, progress=progress)
    return api.verify(settings, progress=progress)


def outcome(target: str, run: Any = None,
            error: BaseException | None = None,
            known_urls: tuple = ()) -> dict:
    """What a job ended with, JSON-able and without a password: the
    exit code the command would have exited with, its run, its error
    line."""
    from mistral_db_flows import urls

    doc: dict[str, Any] = {"target": target, "exit_code": 0,
                           "run": run.to_dict() if run is not None
                           else None, "error": None}
    if error is None:
        return doc
    if isinstance(error, exceptions.MistralDbError):
        code = int(error.exit_code)
        failed_run = getattr(error, "run", None)
        if failed_run is not None and hasattr(failed_run, "to_dict"):
            doc["run"] = failed_run.to_dict()
    else:
        code = int(exceptions.ExitCode.ERROR)
    text = " ".join(str(error).split()) or type(error).__name__
    doc["exit_code"] = code
    doc["error"] = {"type": type(error).__name__,
                    "message": urls.mask_text(text, known_urls)}
    return doc


class _Log:
    """Steps of a job's run, as log lines (what an operator watches)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self, step: str, event: str, value: Any = None) -> None:
        if event in ("running", "success", "failure", "reverted"):
            LOG.info("target %s: step %s %s", self.target, step, event)


class RunJob(task.Task):
    """Run one operation on one target as a guarded run.

    Provides the job's outcome (see :func:`outcome`). It never
    raises for a failure of the operation itself: the run reverted
    what it must already (or stopped resumable), and the outcome
    says so with the command's exit code, so the conductor consumes
    the job and ``post --wait`` exits with that code. ``revert``
    has nothing of its own to undo.
    """

    default_provides = "outcome"

    def __init__(self, target: str, operation: str,
                 argument: str | None) -> None:
        super().__init__(name="%s_%s" % (operation, target),
                         requires=[HOST_KEY])
        self.target = target
        self.operation = operation
        self.argument = argument

    def execute(self, fleet_host: dict) -> dict:
        settings = None
        try:
            settings = hosts.settings_for(
                hosts.Host.from_dict(fleet_host), self.target)
            LOG.info("target %s: %s%s starts", self.target,
                     self.operation,
                     " " + self.argument if self.argument else "")
            run = run_operation(settings, self.operation,
                                self.argument, _Log(self.target))
        except Exception as exc:
            known = () if settings is None else (
                settings.database_url, settings.logbook_connection)
            done = outcome(self.target, error=exc, known_urls=known)
            LOG.warning("target %s: %s failed (exit %d): %s",
                        self.target, self.operation,
                        done["exit_code"], done["error"]["message"])
            return done
        LOG.info("target %s: %s done (%s)", self.target,
                 self.operation, run.state)
        return outcome(self.target, run=run)
