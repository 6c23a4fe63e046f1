"""Schema changes that wait for locks without stalling the service.

A schema change (``ALTER TABLE``) needs an exclusive lock on its table.
Queued behind another session's transaction, it would make every later
reader of the table queue behind it too, for as long as that
transaction lasts. So each migrate step runs with a short statement
lock timeout (PostgreSQL ``lock_timeout``, MariaDB/MySQL
``lock_wait_timeout`` and ``innodb_lock_wait_timeout``): a reader is
never blocked longer than that. When it expires the step is tried again
(PostgreSQL rolled it back; on MariaDB the ``ddl`` layer re-runs what
is left) after a growing pause in which readers go through, until the
run's ``lock_timeout`` is spent; then :class:`exceptions.LockWaitTimeout`
names the session holding the lock. While waiting, the step is told
what it waits for at once and every :data:`REPORT_EVERY` seconds.

SQLite has no statement lock timeout to set: its busy timeout already
bounds every wait.
"""
from __future__ import annotations

import dataclasses
import math
import re
import time
from typing import Any, Callable, TypeVar

from mistral_db_flows import exceptions
from mistral_db_flows import sessions

REPORT_EVERY = 10.0
FIRST_PAUSE = 0.25
MAX_PAUSE = 4.0

T = TypeVar("T")

_BOUND = {
    "postgresql": ("SET lock_timeout = '%dms'", "SET lock_timeout = DEFAULT"),
    "mysql": ("SET SESSION lock_wait_timeout = %d, "
              "innodb_lock_wait_timeout = %d",
              "SET SESSION lock_wait_timeout = DEFAULT, "
              "innodb_lock_wait_timeout = DEFAULT"),
}

# The table a statement changes, for the message (quoted or not).
_TABLE = re.compile(
    r"^\s*(?:ALTER\s+TABLE(?:\s+ONLY)?|(?:CREATE|DROP)\s+(?:UNIQUE\s+)?"
    r"INDEX\s+\S+\s+ON|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|UPDATE|INSERT\s+"
    r"INTO|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|RENAME\s+TABLE)\s+"
    r"[\"`]?([\w$]+)", re.I)


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long one statement may wait for a lock, and all attempts."""

    statement: float
    total: float

    @classmethod
    def of(cls, settings: Any = None) -> "Budget":
        """What ``settings`` (a ``conf.Settings``; None: the defaults)
        allow."""
        from mistral_db_flows import conf

        settings = settings or conf.Settings()
        return cls(settings.statement_lock_timeout, settings.lock_timeout)


def dialect_of(conn: Any) -> str:
    name = conn.dialect.name
    return "mysql" if name == "mariadb" else name


# Where a connection remembers the statement lock timeout its session
# has (absent: the server's default), so that consecutive steps on the
# run's connection set it once instead of twice per step.
_INFO_KEY = "mdf_statement_lock_timeout"


def bound(conn: Any, seconds: float | None) -> bool:
    """Set (None: reset) the statement lock timeout of SQLAlchemy
    connection ``conn``'s session and commit (a SET rolled back is
    undone on PostgreSQL). Nothing is sent when the session has it
    already; returns whether something was."""
    statements = _BOUND.get(dialect_of(conn))
    if statements is None:
        return False
    info = conn.info
    if info.get(_INFO_KEY) == seconds:
        return False
    if seconds is None:
        conn.exec_driver_sql(statements[1])
    elif dialect_of(conn) == "postgresql":
        conn.exec_driver_sql(statements[0] % max(1, round(seconds * 1000)))
    else:  # whole seconds only
        whole = max(1, math.ceil(seconds))
        conn.exec_driver_sql(statements[0] % (whole, whole))
    conn.commit()
    if seconds is None:
        info.pop(_INFO_KEY, None)
    else:
        info[_INFO_KEY] = seconds
    return True


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (a driver's, or SQLAlchemy's around it) says a
    statement gave up waiting for a lock."""
    driver = getattr(exc, "orig", None) or exc
    code = getattr(driver, "pgcode", None) or getattr(driver, "sqlstate",
                                                      None)
    if code == "55P03":  # PostgreSQL lock_not_available
        return True
    args: tuple = tuple(getattr(driver, "args", ()))
    return bool(args) and args[0] == 1205  # ER_LOCK_WAIT_TIMEOUT


def table_of(exc: BaseException) -> str | None:
    """The table the statement that timed out was changing."""
    statement = getattr(exc, "statement", None) or ""
    match = _TABLE.match(statement)
    return match.group(1) if match else None


def holder(conn: Any, table: str | None) -> dict[str, Any] | None:
    """The other session most likely holding the lock on ``table`` of
    ``conn``'s database (None when none is found)."""
    dialect = dialect_of(conn)

    def rows(statement: str, params: tuple) -> list:
        return conn.exec_driver_sql(statement, params).fetchall()

    params = (table, table) if dialect == "postgresql" else ()
    try:
        found = sessions.find(rows, dialect, "table_lock", params)
    finally:
        conn.rollback()
    return found[0] if found else None


def waiting_text(table: str | None, who: dict[str, Any] | None) -> str:
    return "waiting for a lock on %s held by %s" % (
        table or "a table",
        exceptions.describe_session(who) if who else "another session")


class Waits:
    """One step's attempts, against one budget (see the module)."""

    def __init__(self, conn: Any, budget: Budget, database: str,
                 report: Callable[[str], None]) -> None:
        self.conn = conn
        self.budget = budget
        self.database = database
        self.report = report
        self.started = time.monotonic()
        self._reported: float | None = None
        self._pause = FIRST_PAUSE

    def retry(self, attempt: Callable[[bool], T], careful: bool) -> T:
        """``attempt(careful)`` until it does not time out on a lock;
        after a timeout, attempts are careful (re-runnable)."""
        while True:
            try:
                return attempt(careful)
            except Exception as exc:
                if not is_lock_timeout(exc):
                    raise
                self.conn.rollback()
                self._wait(exc)
                careful = True

    def _wait(self, exc: BaseException) -> None:
        table = table_of(exc)
        who = holder(self.conn, table)
        now = time.monotonic()
        waited = now - self.started
        if waited >= self.budget.total:
            raise exceptions.LockWaitTimeout(
                database=self.database, table=table, holder=who,
                waited=waited) from exc
        if self._reported is None or now - self._reported >= REPORT_EVERY:
            self._reported = now
            self.report(waiting_text(table, who))
        # Readers queued behind our attempt go through meanwhile.
        time.sleep(min(self._pause, self.budget.total - waited))
        self._pause = min(self._pause * 2, MAX_PAUSE)
