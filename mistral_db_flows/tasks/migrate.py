"""migrate: one task per pending revision, each "upgrade to exactly X".

A step is idempotent: when the database is already at X or past it, it
does nothing, so a re-run (or, later, a resumed run) never applies a
revision twice.

A step reverts itself: with ``journal`` on (``[db_manage] backup`` is
``steps`` or ``full``) every schema operation of its revision first
records its inverse, and the data it is about to destroy, in side
tables of the target database (:mod:`mistral_db_flows.revert`);
``revert`` replays them newest first, puts ``alembic_version`` back to
the revision the step started from and forgets them. TaskFlow reverts
the failed step, then every step before it, in reverse order.
"""
from __future__ import annotations

import logging
from typing import Any

from taskflow import task

from mistral_db_flows import conf
from mistral_db_flows import dbapi
from mistral_db_flows import exceptions
from mistral_db_flows import fencing
from mistral_db_flows import flows
from mistral_db_flows import lockwait
from mistral_db_flows import migration
from mistral_db_flows import revisions
from mistral_db_flows import version_table


LOG = logging.getLogger(__name__)


def step_name(revision: str) -> str:
    return "migrate_%s" % revision


class MigrateTo(task.Task):
    """Upgrade the database to exactly ``revision``."""

    # While a change waits for another session's lock: see lockwait.
    TASK_EVENTS = task.Task.TASK_EVENTS + (flows.STEP_WAITING,)

    def __init__(self, database_url: str, revision: str,
                 lock_budget: lockwait.Budget | None = None, *,
                 journal: bool = True, revert: bool = True,
                 last: bool = True) -> None:
        super().__init__(name=step_name(revision))
        self._database_url = database_url
        self.revision = revision
        self._lock_budget = lock_budget or lockwait.Budget.of()
        self._journal = journal
        self._revert = revert and journal
        # The last migrate step of its flow gives the run's connection
        # back with the server's lock timeouts; the steps before leave
        # them set for the next one (see lockwait.bound).
        self._last = last
        self._attempt_journal: Any = None

    def execute(self, run_id: str | None = None) -> dict:
        # The run's connection (connecting costs more than most
        # revisions); after a failure it is not trusted again.
        with dbapi.sqlalchemy_connection(self._database_url) as conn:
            try:
                return self._upgrade_on(conn, run_id)
            except Exception:
                # Lost the lock meanwhile: halt (resumable), not fail.
                fencing.confirm(conn)
                raise

    def _new_journal(self, run_id: str | None) -> Any:
        """A journal for one attempt (it reads back what an earlier,
        interrupted attempt recorded)."""
        if not self._journal:
            return None
        from mistral_db_flows.revert import journal

        self._attempt_journal = journal.Journal(self.revision, run_id)
        return self._attempt_journal

    def _versions(self, conn) -> list[str]:
        found = version_table.current_revisions(conn)
        conn.commit()  # Alembic must start its own transactions
        return found

    def _upgrade_on(self, conn, run_id: str | None) -> dict:
        # After a failure the connection is discarded (dbapi), and
        # its session settings with it.
        result = self._upgrade_checked(conn, run_id)
        if self._last:
            lockwait.bound(conn, None)
        return result

    def _upgrade_checked(self, conn, run_id: str | None) -> dict:
        graph = revisions.graph()
        # What the step before found right after its own upgrade, on
        # this connection, under the same lock: no need to ask again.
        current = version_table.take_known(conn) or self._versions(conn)
        for rev in current:
            if rev not in graph:
                raise exceptions.UnknownRevision(rev, where="database")
        start = current[0] if len(current) == 1 else None
        reached = set()
        for rev in current:
            reached |= graph.ancestors(rev)
        if self.revision in reached:
            return {"revision": self.revision, "applied": False,
                    "from": start}
        if len(current) > 1 or (start is not None and start
                                not in graph.ancestors(self.revision)):
            raise exceptions.MistralDbError(
                "the database is at %s, which does not lead to %s"
                % (", ".join(current), self.revision))
        # A short lock timeout per statement: readers of a table never
        # queue behind our waiting ALTER for longer (see lockwait).
        lockwait.bound(conn, self._lock_budget.statement)
        waits = lockwait.Waits(conn, self._lock_budget,
                               conn.engine.url.database or "",
                               self._waiting)
        try:
            # Fast first: no look at the live schema before each change.
            after = waits.retry(
                lambda careful: self._apply(conn, careful, run_id), False)
        except exceptions.LockWaitTimeout:
            raise
        except Exception as exc:  # any failure: redo it carefully
            # An earlier attempt (a crash, another tool) may have done
            # part of this revision; every operation then failed loudly.
            # PostgreSQL rolled the attempt back; MySQL and SQLite kept
            # what ran, which the careful run skips or completes.
            fencing.confirm(conn)  # not after losing the lock
            LOG.info("revision %s: retrying with schema checks after: %s",
                     self.revision, str(exc).splitlines()[0])
            conn.rollback()
            self._forget_journal_ready(conn)
            after = waits.retry(
                lambda careful: self._apply(conn, careful, run_id), True)
        if after != [self.revision]:
            raise exceptions.MistralDbError(
                "after upgrading to %s alembic_version says %s"
                % (self.revision, ", ".join(after) or "nothing"))
        version_table.remember(conn, after)
        if self._attempt_journal is not None and \
                self._attempt_journal.started:
            from mistral_db_flows.revert import journal

            journal.mark_ready(conn)  # committed with the step
        return {"revision": self.revision, "applied": True, "from": start}

    def _apply(self, conn, careful: bool, run_id: str | None
               ) -> list[str]:
        """One attempt; the version it leaves, as Alembic wrote it
        (read back only when Alembic applied nothing)."""
        reached: list[str] = []
        migration.upgrade(self._database_url, self.revision,
                          connection=conn, check_existing=careful,
                          journal=self._new_journal(run_id),
                          reached=reached)
        conn.commit()
        return reached or self._versions(conn)

    def _forget_journal_ready(self, conn) -> None:
        if self._journal:
            from mistral_db_flows.revert import journal

            journal.forget_ready(conn)

    def _waiting(self, text: str) -> None:
        self.notifier.notify(flows.STEP_WAITING, {"text": text})

    def revert(self, result: Any = None, *args: Any, **kwargs: Any
               ) -> dict | None:
        """What was undone (None: nothing, e.g. with on_failure=stop)."""
        if not self._revert:
            # No journal, or --on-failure stop: leave it for a resume.
            return None
        from mistral_db_flows import revert

        # A step that found the database already past its revision
        # moved nothing; its journal (an interrupted attempt of this
        # run) still says what to undo.
        applied = not isinstance(result, dict) or bool(result.get("applied"))
        with dbapi.sqlalchemy_connection(self._database_url) as conn:
            undone = revert.revert_step(conn, self.revision,
                                        move_version=applied)
        if not (undone.inverses or undone.version_moved):
            return None
        return {"revision": self.revision, "inverses": undone.inverses,
                "back_to": undone.parent}

    def kept(self) -> None:
        """A host task after ours failed and the host keeps the upgraded
        database (``revert_on_outer_failure=False``): this step's journal
        could only undo it, so it goes."""
        if not self._journal:
            return
        from mistral_db_flows.revert import journal

        with dbapi.sqlalchemy_connection(self._database_url) as conn:
            journal.forget(conn, self.revision)
            conn.commit()


def factory(ctx) -> list[task.Task]:
    settings = ctx.settings or conf.Settings()
    budget = lockwait.Budget.of(settings)
    pending = list(ctx.pending)
    return [MigrateTo(ctx.database_url, rev, budget,
                      journal=settings.keeps_step_reverts,
                      revert=settings.on_failure == "revert",
                      last=i == len(pending) - 1)
            for i, rev in enumerate(pending)]
