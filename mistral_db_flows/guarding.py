"""The guard of a run: its lock (a fence) and its logbook, held for the
whole run, and what is said about waits and other sessions before the
run changes anything."""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import logbook


def logbook_url(settings: conf.Settings) -> str:
    return settings.logbook_connection or logbook.default_logbook_url(
        settings.resolved_state_dir())


@dataclasses.dataclass
class Guard:
    """A run's lock and logbook, held for its whole length."""

    lock: Any
    store: logbook.RunStore

    def check(self) -> None:
        """Raise LockLost if the lock went away (called between steps:
        one cheap query on the lock's own session)."""
        try:
            self.lock.check()
        except exceptions.LockError as exc:
            raise exceptions.LockLost(database=exc.database,
                                      reason=str(exc)) from exc

    def fence(self) -> None:
        """:meth:`check`, from inside a step about to commit: a run
        that lost its lock halts there, leaving the step as a kill
        would (rolled back where the server can, resumable), never
        failed, so nothing reverts."""
        try:
            self.check()
        except exceptions.LockLost as lost:
            raise exceptions.StepHalted(lost) from lost


def notify(progress: Any, step: str) -> Callable[[str], None]:
    """A line for the operator about ``step``: through ``progress``
    (the CLI prints it), else logged."""
    import logging

    def tell(text: str) -> None:
        if progress is not None:
            progress(step, "waiting", {"text": text})
        else:
            logging.getLogger(__name__).warning("%s: %s", step, text)
    return tell


@contextlib.contextmanager
def guard(settings: conf.Settings, owner: str, *,
          progress: Any = None) -> Iterator[Guard]:
    """Hold the database's lock and open its logbook for the body."""
    from mistral_db_flows import locking

    with locking.hold(settings.database_url,
                      timeout=settings.lock_timeout, owner=owner,
                      on_wait=notify(progress, "lock")) as lock:
        # The lock asked the server which database this is: the logbook
        # (and the run's backup) use that answer.
        with logbook.opened(logbook_url(settings), settings.database_url,
                            target_identity=lock.identity) as store:
            yield Guard(lock, store)


@contextlib.contextmanager
def guarded(settings: conf.Settings, owner: str
            ) -> Iterator[logbook.RunStore]:
    """:func:`guard`, for a body that needs only the logbook."""
    with guard(settings, owner) as held:
        yield held.store


def check_others(settings: conf.Settings, progress: Any) -> None:
    """Other sessions on the database: a warning, or refused."""
    from mistral_db_flows import dbapi
    from mistral_db_flows import sessions

    parsed = dbapi.parse(settings.database_url)
    if parsed.backend == "sqlite":
        return  # no sessions to ask about
    handle = dbapi.connect(settings.database_url)
    try:
        sessions.check_others(handle, parsed.database or "",
                              refuse=settings.refuse_if_connected,
                              report=notify(progress, "sessions"))
    finally:
        handle.close()
