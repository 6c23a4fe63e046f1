"""One run at a time per database.

``hold(url, timeout=..., owner=...)`` holds a lock for the whole run that
the operating system or the server releases when the process dies, so it
can never go stale after a kill:

* PostgreSQL: a session advisory lock on a dedicated connection;
* MariaDB/MySQL: ``GET_LOCK`` on a dedicated connection;
* SQLite: ``flock`` on ``<database file>.lock``.

The lock is named after the database's identity (``identity``: asked
of the server on the lock's own session, the SQLite file's real path),
never credentials: two URLs that reach the same database through
different host names, ports, drivers or users exclude each other.

None of it imports SQLAlchemy for a plain URL (``dbapi`` opens the
driver itself): every guarded run takes the lock, ``populate`` included,
and the import alone would cost it about a tenth of a second.

This module holds the entry points; ``base`` what every backend offers
(``Lock``); ``server`` the session shared by ``postgres`` and ``mysql``;
``file`` the SQLite lock.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from mistral_db_flows import exceptions
from mistral_db_flows.locking import base
from mistral_db_flows.locking import file
from mistral_db_flows.locking import mysql
from mistral_db_flows.locking import postgres


def lock_for(url: str, owner: str, *,
             identity: str | None = None) -> base.Lock:
    """The (not yet taken) lock of the database at ``url``; without
    its ``identity``, the lock's session asks the server for it."""
    from mistral_db_flows import dbapi

    backends: dict[str, type[base.Lock]] = {
        "postgresql": postgres.PostgresLock, "mysql": mysql.MysqlLock,
        "sqlite": file.FileLock}
    parsed = dbapi.parse(url)
    if parsed.backend not in backends:
        raise exceptions.LockError(
            "cannot lock a %s database" % parsed.backend,
            database=parsed.database or "")
    lock = backends[parsed.backend](url, parsed.database, owner)
    if identity is not None and lock.identity is None:
        lock.named(identity)
    return lock


@contextlib.contextmanager
def hold(url: str, *, timeout: float, owner: str,
         identity: str | None = None,
         on_wait: base.OnWait | None = None) -> Iterator[base.Lock]:
    """Hold the database's lock for the body; wait up to ``timeout``
    seconds for another run to finish, else raise ``exceptions.LockTimeout``.

    ``owner`` says what this run is (e.g. ``"upgrade head"``); others
    waiting for the lock see it with our pid and host when the backend
    can show it. The lock's ``identity`` is the database's (see
    ``identity``), asked on the lock's session unless given. While
    waiting, ``on_wait`` hears at once and every 10 s who holds it.
    """
    lock = lock_for(url, owner, identity=identity)
    try:
        lock.acquire(timeout, on_wait)
    except BaseException as exc:
        # Stopped before the lock was ours (a signal while waiting for
        # another run, the server gone): this command started nothing,
        # so there is nothing of it to resume (see stopped_waiting).
        with contextlib.suppress(AttributeError):
            setattr(exc, _BEFORE_LOCK, True)
        raise
    try:
        yield lock
    finally:
        lock.release()


_BEFORE_LOCK = "mdf_before_lock"


def stopped_waiting(exc: BaseException) -> bool:
    """Whether ``exc`` stopped a command before it held the lock."""
    return bool(getattr(exc, _BEFORE_LOCK, False))


def held_by(url: str, *, identity: str | None = None
            ) -> dict[str, Any] | None:
    """Who holds the database's lock right now (None: nobody).

    Takes the lock without waiting and gives it back at once; when
    another run holds it, returns what the backend tells of that run
    (an empty dict when it tells nothing).
    """
    try:
        with hold(url, timeout=0, owner="status", identity=identity):
            return None
    except exceptions.LockTimeout as exc:
        return exc.holder or {}

