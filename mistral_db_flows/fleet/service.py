"""The two fleet commands as library functions: post a job (and wait
for it), and run a conductor. The CLI calls these; an orchestrator can
too."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows.fleet import board
from mistral_db_flows.fleet import factory
from mistral_db_flows.fleet import hosts


def shared_logbook(settings: conf.Settings) -> str:
    """The shared logbook URL; a fleet has no use for a local one."""
    url = settings.logbook_connection
    if not url or "://" not in url:
        raise exceptions.ConfigError(
            "the fleet needs a logbook every conductor and poster shares: "
            "set [db_manage] logbook_connection to a SQL URL")
    return url


def post(settings: conf.Settings, jobboard_url: str, board_name: str,
         target: str, operation: str, argument: str | None = None, *,
         wait: bool = False, timeout: float | None = None,
         poll: float = 0.5) -> board.Posted:
    """Post one job; with ``wait``, wait for its outcome (JobFailed, with
    the operation's exit code, when it did not succeed)."""
    factory.check_job(target, operation, argument)
    board.board_conf(jobboard_url, board_name)  # bad input first
    from taskflow import exceptions as tf_exc

    from mistral_db_flows import urls

    backend = board.persistence(shared_logbook(settings))
    try:
        with board.opened(jobboard_url, board_name, backend) as jobboard:
            try:
                posted = board.post(jobboard, backend, target, operation,
                                    argument)
                if wait:
                    board.wait(jobboard, backend, posted, poll=poll,
                               timeout=timeout)
            except tf_exc.JobFailure as exc:  # Redis went away
                raise exceptions.JobboardError(
                    urls.mask_text(jobboard_url),
                    " ".join(str(exc).split()), board=board_name) from exc
            return posted
    finally:
        backend.close()


@contextlib.contextmanager
def conducting(settings: conf.Settings, jobboard_url: str,
               board_name: str, host: hosts.Host, *,
               claim_expiry: float | None = None,
               wait_timeout: float | None = None) -> Iterator[Any]:
    """A connected conductor for the body, which calls its ``run()``
    (blocking until ``stop()``)."""
    from mistral_db_flows.fleet import conductor as conductor_mod

    board.board_conf(jobboard_url, board_name)
    expiry = claim_expiry or conductor_mod.DEFAULT_CLAIM_EXPIRY
    if expiry <= 0:
        raise exceptions.UsageError("--claim-expiry must be above 0")
    backend = board.persistence(shared_logbook(settings))
    try:
        with board.opened(
                jobboard_url, board_name, backend,
                board_class=conductor_mod.ExpiringClaimsBoard,
                claim_expiry=expiry) as jobboard:
            worker = conductor_mod.Conductor(
                conductor_mod.conductor_name(), jobboard, host,
                persistence=backend,
                wait_timeout=wait_timeout or conductor_mod.DEFAULT_WAIT)
            try:
                yield worker
            finally:
                worker.stop()
    finally:
        backend.close()
