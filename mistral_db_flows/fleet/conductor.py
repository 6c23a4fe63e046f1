"""A conductor whose claims expire unless it is alive.

TaskFlow's blocking conductor claims a Redis job with no expiry: a
conductor that dies keeps its jobs forever. Here every claim is made
with an expiry (``claim_expiry`` seconds), and a heartbeat thread
extends it every third of that while the job runs, long steps (a data
migration, a dump) included: the heartbeat does not depend on the
engine reporting anything. A conductor that dies stops extending, its
claim lapses within ``claim_expiry`` seconds, and another conductor
claims the job and resumes its run from the shared logbook.

Two conductors never run one job: a claim is held by one owner at a
time and only lapses when the heartbeat stops; should it ever lapse
while its owner still runs (Redis unreachable for longer than the
expiry), the database's run lock, held by that owner, keeps the second
from touching the database until the first is done.

One job at a time per conductor process: runs of several databases in
one process are not isolated from each other yet (Alembic's ``op`` and
``context`` are process-wide); run more conductor processes instead.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from typing import Any, Iterator

from taskflow.conductors.backends import impl_blocking
from taskflow.jobs.backends import impl_redis

from mistral_db_flows.fleet import factory
from mistral_db_flows.fleet import hosts

LOG = logging.getLogger(__name__)
DEFAULT_CLAIM_EXPIRY = 10.0
# How often the board is looked at for new (or lapsed) jobs.
DEFAULT_WAIT = 1.0


class ExpiringClaimsBoard(impl_redis.RedisJobBoard):
    """A Redis jobboard whose claims lapse after ``claim_expiry`` s."""

    def __init__(self, name: str, conf: dict, *, claim_expiry: float,
                 **kwargs: Any) -> None:
        super().__init__(name, conf, **kwargs)
        self.claim_expiry = claim_expiry

    def claim(self, job: Any, who: str, expiry: Any = None) -> Any:
        return super().claim(job, who, expiry=expiry or self.claim_expiry)


@contextlib.contextmanager
def heartbeat(job: Any, expiry: float,
              interval: float | None = None) -> Iterator[threading.Event]:
    """Extend ``job``'s claim every ``interval`` s (a third of the
    expiry) until the body ends. The event yielded is set when an
    extension found the claim gone (the job is then someone else's)."""
    interval = interval or expiry / 3.0
    stop = threading.Event()
    lost = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                if not job.extend_expiry(expiry):
                    lost.set()
                    LOG.error("job %s: the claim is gone (expired or "
                              "taken); the run's lock still guards the "
                              "database", job.uuid)
                    return
            except Exception:  # Redis unreachable: try again next beat
                LOG.warning("job %s: could not extend the claim",
                            job.uuid, exc_info=True)

    thread = threading.Thread(target=beat, daemon=True,
                              name="claim-heartbeat-%s" % job.uuid)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join()


class Conductor(impl_blocking.BlockingConductor):
    """Claims a job (with an expiry), keeps the claim alive while the
    job's flow runs, and hands the flow this host's :class:`Host`."""

    def __init__(self, name: str, jobboard: ExpiringClaimsBoard,
                 host: hosts.Host, *, persistence: Any,
                 wait_timeout: float = DEFAULT_WAIT) -> None:
        super().__init__(name, jobboard, persistence=persistence,
                         wait_timeout=wait_timeout)
        self.host = host
        self.claim_expiry = jobboard.claim_expiry

    @property
    def name(self) -> str:
        """The owner name its claims carry (unique per process)."""
        return self._name

    def _engine_from_job(self, job: Any) -> Any:
        from taskflow import engines

        flow_detail = self._flow_detail_from_job(job)
        # The host's paths, never the job's: each host reads its own
        # target files. Loaded again on every host that runs the job.
        store = {factory.HOST_KEY: self.host.to_dict()}
        return engines.load_from_detail(flow_detail, store=store,
                                        backend=self._persistence)

    def _dispatch_job(self, job: Any) -> Any:
        LOG.info("conductor %s: running job %s (%s)", self._name, job.uuid,
                 job.name)
        with heartbeat(job, self.claim_expiry):
            consume = super()._dispatch_job(job)
        LOG.info("conductor %s: job %s %s", self._name, job.uuid,
                 "done" if consume else "left for another conductor")
        return consume


def conductor_name() -> str:
    """Unique per process: a claim's owner is checked by name."""
    return "mistral-db-conductor@%s:%d" % (socket.gethostname(),
                                           os.getpid())
