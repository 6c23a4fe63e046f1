"""A shared logbook: TaskFlow's SQL backend, one connection per run.

With ``logbook_connection`` the runs are recorded in any database
TaskFlow's SQL backend supports. The stock backend builds a new
connection, with its own MetaData and tables, on every state save:
~55 ms per step of a 45-step flow. One connection kept for the
backend's life brings that to ~19 ms.
"""
from __future__ import annotations

import threading
from typing import Any

from taskflow.persistence.backends import impl_sqlalchemy


class KeptConnection(impl_sqlalchemy.Connection):
    """A connection TaskFlow's storage cannot close.

    TaskFlow closes the connection after every save; the backend's
    close() is what ends this one.
    """

    def close(self) -> None:
        pass

    def add_flow_details(self, book: Any, flow_detail: Any) -> None:
        """Record one new run in ``book`` (as the local backend does).

        The store loads its book lazily, so the book holds only the
        runs of this process: saving it writes this one, not the rest.
        """
        self.save_logbook(book)

    def destroy_flow_details(self, book: Any, uuids: list[str]) -> None:
        """Delete these runs and their steps (SQLite enforces no
        cascade, so the steps are deleted explicitly)."""
        if not uuids:
            return
        atoms, flows = self._tables.atomdetails, self._tables.flowdetails
        with self._engine.begin() as conn:
            conn.execute(atoms.delete().where(
                atoms.c.parent_uuid.in_(uuids)))
            conn.execute(flows.delete().where(flows.c.uuid.in_(uuids)))


class SqlLogbookBackend(impl_sqlalchemy.SQLAlchemyBackend):
    """TaskFlow's SQL backend at ``url``, on our engine."""

    def __init__(self, url: str) -> None:
        super().__init__({"connection": url}, engine=_engine(url))
        self._connection: KeptConnection | None = None

    def get_connection(self) -> KeptConnection:
        if self._connection is None:
            # One connection, so its own upgrade lock is the only one.
            conn = KeptConnection(self, upgrade_lock=threading.Lock())
            conn.validate()
            self._connection = conn
        return self._connection

    def close(self) -> None:
        self._connection = None
        super().close()
        # The stock close() leaves an engine it was given alone.
        self.engine.dispose()


def _engine(logbook_url: str) -> Any:
    """The logbook's engine; for SQLite one connection in WAL mode.

    TaskFlow saves state after every step change: with a new connection
    and a full fsync per save that costs more than the migrations. WAL
    with synchronous=NORMAL survives a killed process; after a power cut
    the last save may be lost, which only re-runs an idempotent step.
    """
    import sqlalchemy as sa

    from mistral_db_flows import dbapi

    parsed = dbapi.parse(logbook_url)
    if parsed.backend != "sqlite":
        return sa.create_engine(parsed.to_sqlalchemy(), pool_pre_ping=True)
    engine = sa.create_engine(
        parsed.to_sqlalchemy(), poolclass=sa.pool.StaticPool,
        connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine
