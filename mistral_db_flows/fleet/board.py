"""The jobboard: where jobs are posted and claimed (TaskFlow's Redis
backend), the shared logbook their books live in, and waiting for a
job's outcome.

A board is named (``--board``) and its keys live under the namespace
``mistral-db-flows.<board>`` of the Redis database the URL names, so
boards of several fleets share one Redis without seeing each other's
jobs. A job carries its book (in the shared logbook) and these details:
the target's name, the operation, its argument. Its flow is recorded
as :func:`factory.flow_factory` and those arguments; no URL.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
import urllib.parse
import uuid
from typing import Any, Iterator

from mistral_db_flows import exceptions
from mistral_db_flows import urls
from mistral_db_flows.fleet import factory

NAMESPACE_PREFIX = "mistral-db-flows."
_BOARD_NAME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def namespace(board: str) -> str:
    """The Redis key prefix of board ``board``."""
    return NAMESPACE_PREFIX + board


def board_conf(jobboard_url: str, board: str) -> dict:
    """TaskFlow's Redis jobboard configuration for ``redis://HOST:PORT/DB``
    (``redis://:PASSWORD@HOST...`` and ``rediss://`` for TLS too)."""
    if not board or not set(board) <= _BOARD_NAME_CHARS:
        raise exceptions.UsageError(
            "--board %r: use letters, digits, '.', '_' and '-'" % board)
    parts = urllib.parse.urlsplit(jobboard_url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise exceptions.UsageError(
            "--jobboard %s: give redis://HOST:PORT/DB"
            % urls.mask_text(jobboard_url))
    path = parts.path.strip("/")
    try:
        port = parts.port or 6379
        db = int(path) if path else 0
    except ValueError as exc:
        raise exceptions.UsageError(
            "--jobboard %s: %s" % (urls.mask_text(jobboard_url), exc))
    out: dict[str, Any] = {"host": parts.hostname, "port": port, "db": db,
                           "namespace": namespace(board),
                           "socket_timeout": 10.0,
                           "socket_connect_timeout": 5.0}
    if parts.username:
        out["username"] = urllib.parse.unquote(parts.username)
    if parts.password:
        out["password"] = urllib.parse.unquote(parts.password)
    if parts.scheme == "rediss":
        out["ssl"] = True
    return out


def persistence(logbook_url: str) -> Any:
    """The shared logbook's TaskFlow backend (the jobs' books), with its
    tables created."""
    from mistral_db_flows import logbook

    backend = logbook.backend_for(logbook_url)
    try:
        for attempt in range(_UPGRADE_ATTEMPTS):
            try:
                backend.get_connection().upgrade()
                break
            except Exception as exc:
                # Two processes creating the tables of a new logbook at
                # once: one loses (a duplicate table); the tables are
                # there when it looks again.
                said = str(exc).lower()
                racing = "duplicate" in said or "already exists" in said
                if not racing or attempt + 1 == _UPGRADE_ATTEMPTS:
                    raise exceptions.LogbookError(
                        urls.masked(logbook_url),
                        urls.mask_text(" ".join(str(exc).split()),
                                       (logbook_url,)),
                        advice="check [db_manage] logbook_connection and "
                        "that its server answers") from exc
                time.sleep(0.5 * (attempt + 1))
    except BaseException:
        backend.close()
        raise
    return backend


_UPGRADE_ATTEMPTS = 4


@contextlib.contextmanager
def opened(jobboard_url: str, board: str, backend: Any, *,
           board_class: Any = None, **extra: Any) -> Iterator[Any]:
    """The connected Redis jobboard ``board`` for the body."""
    from taskflow.jobs.backends import impl_redis

    conf = board_conf(jobboard_url, board)
    cls = board_class or impl_redis.RedisJobBoard
    jobboard = cls(board, conf, persistence=backend, **extra)
    try:
        jobboard.connect()
    except Exception as exc:
        raise exceptions.JobboardError(urls.mask_text(jobboard_url),
                                       " ".join(str(exc).split()),
                                       board=board) from exc
    try:
        yield jobboard
    finally:
        jobboard.close()


@dataclasses.dataclass
class Posted:
    """A job posted to a board (and, after a wait, what it ended with).

    ``outcome`` is :func:`factory.outcome`'s document, None until the
    job is done (or when it was posted without waiting).
    """

    job: str
    board: str
    target: str
    operation: str
    argument: str | None
    # The job's flow detail in the shared logbook (its outcome).
    flow: str
    outcome: dict | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        what = "%s%s" % (self.operation,
                         " " + self.argument if self.argument else "")
        if self.outcome is None:
            return ["posted job %s on board %s: %s of target %s"
                    % (self.job, self.board, what, self.target)]
        run = self.outcome.get("run") or {}
        return ["job %s: %s of target %s done (%s, at %s)"
                % (self.job, what, self.target, run.get("state"),
                   run.get("end_revision") or "base")]


def post(jobboard: Any, backend: Any, target: str, operation: str,
         argument: str | None) -> Posted:
    """Post one job: its book and flow detail in the shared logbook
    (the factory and its arguments), then the job on the board."""
    from taskflow import engines
    from taskflow.persistence import models

    factory.check_job(target, operation, argument)
    book = models.LogBook("mistral-db-job %s %s" % (operation, target))
    flow_detail = models.FlowDetail(factory.FLOW_NAME,
                                    uuid=str(uuid.uuid4()))
    book.add(flow_detail)
    conn = backend.get_connection()
    conn.save_logbook(book)
    engines.save_factory_details(flow_detail, factory.flow_factory,
                                 [target, operation, argument], {},
                                 backend=backend)
    details = {"flow_uuid": flow_detail.uuid, "target": target,
               "operation": operation, "argument": argument}
    job = jobboard.post("%s %s" % (operation, target), book=book,
                        details=details)
    return Posted(job=job.uuid, board=jobboard.name, target=target,
                  operation=operation, argument=argument,
                  flow=flow_detail.uuid)


def wait(jobboard: Any, backend: Any, posted: Posted, *,
         poll: float = 0.5, timeout: float | None = None) -> Posted:
    """Wait until the job is gone from the board; its outcome as
    recorded in its book. Raises JobFailed when the job did not succeed
    (exit code: the operation's own)."""
    from taskflow import states

    deadline = None if timeout is None else time.monotonic() + timeout
    job = _find(jobboard, posted.job)
    while job is not None and job.state != states.COMPLETE:
        if deadline is not None and time.monotonic() > deadline:
            raise exceptions.JobFailed(
                posted.job, posted.target, posted.operation,
                "not done after %ss (it stays on the board; wait again "
                "with the conductors' logs at hand)" % timeout,
                int(exceptions.ExitCode.ERROR))
        time.sleep(poll)
    done = read_outcome(backend, posted)
    posted.outcome = done
    if done["exit_code"] != 0:
        error = (done.get("error") or {}).get("message") or "failed"
        raise exceptions.JobFailed(posted.job, posted.target,
                                   posted.operation, error,
                                   done["exit_code"], done.get("run"))
    return posted


def _find(jobboard: Any, job_uuid: str) -> Any:
    for job in jobboard.iterjobs(ensure_fresh=True):
        if job.uuid == job_uuid:
            return job
    return None


def read_outcome(backend: Any, posted: Posted) -> dict:
    """The outcome the job's task recorded in its flow detail."""
    from taskflow import exceptions as tf_exc

    try:
        flow_detail = backend.get_connection().get_flow_details(
            posted.flow)
    except tf_exc.NotFound:
        flow_detail = []
    for atom in flow_detail:
        result = getattr(atom, "results", None)
        if isinstance(result, dict) and "exit_code" in result:
            return result
    return {"target": posted.target,
            "exit_code": int(exceptions.ExitCode.ERROR), "run": None,
            "error": {"type": "JobDropped", "message":
                      "the job left the board without an outcome (a "
                      "conductor could not run it: see its log)"}}
