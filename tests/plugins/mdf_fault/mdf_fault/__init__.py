"""Fault injection for the safety tests: our tasks, made to fail or die.

Each entry point (``fault_backup``, ``fault_migrate``, ...) builds the
tasks of the built-in plugin of the same name and wraps their
``execute``/``revert``. The tasks keep their names, so a run started
with these plugins has the fingerprint of the default task list and
resumes with it.

``MDF_FAULT`` says where to strike: ``phase:step:action[:n]``, several
separated by commas; ``step`` is a task name (``backup``,
``migrate_013``, ``verify``...), ``action`` is ``fail`` (raise),
``kill`` (SIGKILL ourselves: no clean-up, like a power cut),
``sleep`` (``n`` seconds, holding the lock; for concurrency tests) or
``disconnect`` (phase ``inside`` only: the server ends the session that
sent the statement, as an administrator would from another session,
PostgreSQL's ``pg_terminate_backend`` or MariaDB's ``KILL``; the step's
next statement finds its connection gone). Phases:

* ``before`` / ``after``: at the start / end of the step's execute
  (``after``: the work is done, TaskFlow has not recorded it yet);
* ``inside``: migrate steps and the like, right after the ``n``-th
  (default 1) changing statement (CREATE, ALTER, DROP, INSERT, UPDATE,
  DELETE, DO...) the step sends to the target database, and after
  every later one (a step that retries after an error fails again);
  ``backup``: while the dump runs (the dump tool started, or SQLite's
  copy written into the still partial file);
* ``revert`` / ``reverted``: at the start / end of the step's revert;
* ``replaying`` (migrate steps): inside the step's revert, right after
  its ``n``-th inverse operation was applied (more may follow: the
  journal is still there, some of it undone);
* ``restore`` (backup only): inside the revert's restore, after the
  database was partly overwritten (SQLite: ``n`` pages copied back;
  PostgreSQL: drops and the dump's script sent, COMMIT not yet;
  MariaDB: every table dropped, nothing loaded yet).

With ``MDF_FAULT_LOG`` set, each fault appends a line to that file
just before it strikes. Without ``MDF_FAULT`` nothing changes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import signal
import time
from typing import Any, Iterator

ENV = "MDF_FAULT"
LOG_ENV = "MDF_FAULT_LOG"
PHASES = ("before", "after", "inside", "revert", "reverted", "restore",
          "replaying")
ACTIONS = ("fail", "kill", "sleep", "disconnect")

# DO: PostgreSQL's anonymous blocks (data migrations run as one).
_CHANGE = re.compile(r"^\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|RENAME"
                     r"|REPLACE|TRUNCATE|COMMENT|DO)\b", re.I)


class InjectedFault(RuntimeError):
    """The failure a ``fail`` fault raises."""


@dataclasses.dataclass(frozen=True)
class Fault:
    phase: str
    step: str
    action: str
    n: int = 1

    def __str__(self) -> str:
        return "%s:%s:%s:%d" % (self.phase, self.step, self.action, self.n)


def parse(text: str | None) -> list[Fault]:
    """The faults in ``text`` (MDF_FAULT's syntax); ValueError if bad."""
    faults = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        fields = part.split(":")
        if len(fields) not in (3, 4) or fields[0] not in PHASES \
                or fields[2] not in ACTIONS:
            raise ValueError("bad %s entry %r: phase:step:action[:n] with "
                             "phase in %s, action in %s"
                             % (ENV, part, PHASES, ACTIONS))
        n = int(fields[3]) if len(fields) == 4 else 1
        faults.append(Fault(fields[0], fields[1], fields[2], n))
    return faults


def faults_for(step: str, phase: str) -> list[Fault]:
    return [f for f in parse(os.environ.get(ENV))
            if f.step == step and f.phase == phase]


def strike(fault: Fault, where: str = "",
           end_session: Any = None) -> None:
    """Do what ``fault`` says: die at once, sleep, end the session with
    ``end_session()``, or raise InjectedFault."""
    text = "injected fault %s%s" % (fault, " (%s)" % where if where else "")
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write("%d %s\n" % (os.getpid(), text))
            out.flush()
            os.fsync(out.fileno())
    if fault.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault.action == "sleep":
        time.sleep(fault.n)
        return
    if fault.action == "disconnect":
        if end_session is None:
            raise ValueError("%s: disconnect needs the phase inside" % fault)
        end_session()
        return
    raise InjectedFault(text)


def _at(step: str, phase: str) -> None:
    for fault in faults_for(step, phase):
        strike(fault)


# -- where the target database is -----------------------------------------

def _target_key(url: Any) -> tuple:
    import sqlalchemy as sa

    u = sa.engine.make_url(url) if isinstance(url, str) else url
    name = u.get_backend_name()
    if name == "sqlite":
        return ("sqlite", os.path.realpath(u.database or ""))
    name = "mysql" if name == "mariadb" else name
    return (name, u.host, u.port, u.database)


@contextlib.contextmanager
def _counting(database_url: str, faults: list[Fault]) -> Iterator[None]:
    """Strike after the n-th changing statement sent to the target."""
    if not faults:
        yield
        return
    import sqlalchemy as sa

    from mistral_db_flows import dbhandle

    target = _target_key(database_url)
    seen = [0]

    def count(statement: str, session: Any) -> None:
        if not _CHANGE.match(statement or ""):
            return
        seen[0] += 1
        for fault in faults:
            # From the n-th on: a step that retries its work (after any
            # error) keeps failing, like a fault that is really there.
            if seen[0] >= fault.n:
                strike(fault, "after statement %d: %s"
                       % (seen[0], " ".join(statement.split())[:80]),
                       functools.partial(_end_session, database_url,
                                         session))

    def after(conn, cursor, statement, parameters, context, executemany):
        if _target_key(conn.engine.url) == target:  # not the logbook
            count(statement, conn.connection.dbapi_connection)

    def after_plain(handle, statement):
        # Plain DB-API handles only ever talk to the target database.
        count(statement, getattr(handle.conn, "dbapi_connection", None)
              or handle.conn)

    sa.event.listen(sa.engine.Engine, "after_cursor_execute", after)
    dbhandle.AFTER_EXECUTE.append(after_plain)
    try:
        yield
    finally:
        sa.event.remove(sa.engine.Engine, "after_cursor_execute", after)
        dbhandle.AFTER_EXECUTE.remove(after_plain)


def _end_session(database_url: str, session: Any) -> None:
    """End the server session of the driver connection ``session`` from
    a session of our own, the way an administrator would."""
    import sqlalchemy as sa

    backend = _backend_of(database_url)
    if backend == "postgresql":
        info = getattr(session, "info", None)
        pid = getattr(info, "backend_pid", None) or session.get_backend_pid()
        statement = "SELECT pg_terminate_backend(%d)" % pid
    elif backend == "mysql":
        statement = "KILL %d" % session.thread_id()
    else:
        raise ValueError("disconnect: a SQLite database has no session "
                         "a server could end")
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as admin:
            admin.execute(sa.text(statement))
    finally:
        engine.dispose()


def _striking(owner: Any, name: str, faults: list[Fault], where: str, *,
              first: bool = False):
    """``owner.name`` patched to strike ``faults`` after (or, with
    ``first``, before) it runs."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        if first:
            _strike_all(faults, where)
        result = original(*args, **kwargs)
        _strike_all(faults, where)
        return result

    return _swapped(owner, name, wrapped)


def _strike_all(faults: list[Fault], where: str) -> None:
    for fault in faults:
        strike(fault, where)


def _backend_of(database_url: str) -> str:
    return _target_key(database_url)[0]


def _inside_backup(database_url: str, faults: list[Fault]):
    """Strike while the dump is being written."""
    from mistral_db_flows.backup import common
    from mistral_db_flows.backup import sqlite

    if not faults:
        return contextlib.nullcontext()
    if _backend_of(database_url) == "sqlite":
        return _striking(sqlite, "_copy", faults,
                         "SQLite copy written to the partial file")
    return _striking(common, "pump", faults, "dump tool running, nothing "
                     "read from it yet", first=True)


def _copy_back_slowly(faults: list[Fault]):
    """SQLite's restore copying one page at a time, striking after n."""
    import sqlite3

    from mistral_db_flows.backup import sqlite as sqlite_backup

    pages = max(f.n for f in faults)
    original = sqlite_backup._copy

    def copy(source, target, *, into_backup, **options):
        if into_backup:
            return original(source, target, into_backup=into_backup,
                            **options)
        src = sqlite3.connect("file:%s?mode=ro" % source, uri=True)
        dst = sqlite3.connect(target)
        done = [0]

        def progress(status, remaining, total):
            done[0] += 1
            if done[0] >= pages and remaining:
                _strike_all(faults, "%d of %d pages copied back"
                            % (done[0], total))
        src.backup(dst, pages=1, progress=progress)
        dst.close()
        src.close()
        return None

    return _swapped(sqlite_backup, "_copy", copy)


@contextlib.contextmanager
def _swapped(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _inside_restore(database_url: str, faults: list[Fault]):
    """Strike once the restore has begun overwriting the database."""
    if not faults:
        return contextlib.nullcontext()
    backend = _backend_of(database_url)
    if backend == "sqlite":
        return _copy_back_slowly(faults)
    if backend == "postgresql":
        from mistral_db_flows.backup import common

        return _striking(common, "pump", faults, "drops and the dump's "
                         "script sent, no COMMIT yet")
    from mistral_db_flows.backup import mysql

    return _striking(mysql, "_drop_everything", faults,
                     "every table dropped, nothing loaded yet")


# -- wrapping tasks ---------------------------------------------------------

def wrap(task: Any, database_url: str) -> Any:
    """Make ``task`` obey MDF_FAULT; it keeps its name and signature."""
    execute, revert = task.execute, task.revert
    step = task.name

    @functools.wraps(execute)
    def faulty_execute(*args, **kwargs):
        _at(step, "before")
        inside = faults_for(step, "inside")
        if step == "backup":
            guard = _inside_backup(database_url, inside)
        else:
            guard = _counting(database_url, inside)
        with guard:
            result = execute(*args, **kwargs)
        _at(step, "after")
        return result

    @functools.wraps(revert)
    def faulty_revert(*args, **kwargs):
        _at(step, "revert")
        with _inside_restore(database_url, faults_for(step, "restore")), \
                _replaying(step, faults_for(step, "replaying")):
            result = revert(*args, **kwargs)
        _at(step, "reverted")
        return result

    # Instance attributes: TaskFlow calls task.execute(**arguments), and
    # took the arguments from the class's signature already.
    task.execute = faulty_execute
    task.revert = faulty_revert
    return task


@contextlib.contextmanager
def _replaying(step: str, faults: list[Fault]) -> Iterator[None]:
    """Strike after the n-th inverse a migrate step's revert applies."""
    if not faults:
        yield
        return
    from mistral_db_flows.revert import replay

    def after(revision: str, applied: int) -> None:
        if step != "migrate_%s" % revision:
            return
        for fault in faults:
            if applied == fault.n:
                strike(fault, "after inverse %d of %s" % (applied, step))

    replay.AFTER_INVERSE.append(after)
    try:
        yield
    finally:
        replay.AFTER_INVERSE.remove(after)


def _wrapping(module: str, factory: str = "factory"):
    def make(ctx):
        import importlib

        if module == "backup" and any(faults_for("backup", phase)
                                      for phase in PHASES):
            # Strike the backup where the fault says, not in a dump
            # started early, before the run was even recorded.
            ctx = dataclasses.replace(ctx, fresh_run=False)

        built = getattr(importlib.import_module(
            "mistral_db_flows.tasks." + module), factory)(ctx)
        items = built if isinstance(built, (list, tuple)) else [built]
        return [wrap(task, ctx.database_url) for task in items]

    make.__name__ = "fault_" + module
    return make


backup = _wrapping("backup")
check_branches = _wrapping("branches")
migrate = _wrapping("migrate")
downgrade = _wrapping("downgrade")
stamp = _wrapping("stamp")
verify = _wrapping("verify")
populate = _wrapping("populate")
populate_actions = _wrapping("populate", "actions_factory")
