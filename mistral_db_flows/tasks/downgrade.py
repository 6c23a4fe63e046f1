"""downgrade: one task per revision undone, newest first.

Each step "undoes exactly revision X" with the inverses the upgrade's
own revert uses (:mod:`mistral_db_flows.revert.replay`): the journal
kept by the run that applied X when there is one
(``keep_revert_data``), else the inverses planned from the revision
itself (:mod:`revert.plan`; only for revisions that destroyed or
rewrote nothing: the api refuses the others before the flow is built).

A step is idempotent: a database already below X is left alone, and
a step interrupted half-way (MariaDB and SQLite commit DDL at once)
is finished by running it again (replay looks before it acts; the
journal's entries go only at the step's end).

Revert (another step failed, or this one): the step re-applies X with
the revision's own upgrade, carefully (re-runnable), and records its
journal again as kept data when that was what it used up. So a failed
downgrade ends where it started, kept data included.
"""
from __future__ import annotations

import logging
from typing import Any

from taskflow import task

from mistral_db_flows import conf
from mistral_db_flows import dbapi
from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import lockwait
from mistral_db_flows import migration
from mistral_db_flows import revisions
from mistral_db_flows import version_table

LOG = logging.getLogger(__name__)


def step_name(revision: str) -> str:
    return "downgrade_%s" % revision


def planned(database_url: str, revision: str) -> list[dict]:
    """``revision``'s planned inverses, in the order to apply them;
    RevertDataMissing when it needs kept data."""
    from mistral_db_flows import revert

    plan = migration.plan_revert(database_url, revision,
                                 revert.parent_of(revision))
    if plan.needs is not None:
        raise exceptions.RevertDataMissing(revision, plan.needs,
                                           revert.parent_of(revision))
    return plan.newest_first()


class DowngradeFrom(task.Task):
    """Undo exactly ``revision`` (the database goes to its parent)."""

    TASK_EVENTS = task.Task.TASK_EVENTS + (flows.STEP_WAITING,)

    def __init__(self, database_url: str, revision: str,
                 lock_budget: lockwait.Budget | None = None, *,
                 revert: bool = True) -> None:
        super().__init__(name=step_name(revision))
        self._database_url = database_url
        self.revision = revision
        self._lock_budget = lock_budget or lockwait.Budget.of()
        self._revert = revert

    def _parent(self) -> str | None:
        from mistral_db_flows import revert

        return revert.parent_of(self.revision)

    def _versions(self, conn: Any) -> list[str]:
        found = version_table.current_revisions(conn)
        conn.commit()
        return found

    def execute(self, run_id: str | None = None) -> dict:
        with dbapi.sqlalchemy_connection(self._database_url) as conn:
            return self._undo_on(conn)

    def _undo_on(self, conn: Any) -> dict:
        from mistral_db_flows.revert import journal

        parent = self._parent()
        current = self._versions(conn)
        undone = {"revision": self.revision, "back_to": parent}
        if current != [self.revision]:
            graph = revisions.graph()
            below = (not current or (len(current) == 1 and current[0]
                                     in graph.ancestors(self.revision)))
            if not below:
                raise exceptions.MistralDbError(
                    "the database is at %s, not at %s: it cannot be "
                    "downgraded from there"
                    % (", ".join(current), self.revision))
            # Done already (a resumed run): its kept data is used up.
            journal.unkeep(conn, self.revision)
            conn.commit()
            return dict(undone, undone=False, from_kept=False)
        # Kept entries, or entries of an attempt cut off half-way: the
        # journal says exactly what to undo; else the plan does.
        from_kept = bool(journal.entries(conn, self.revision))
        conn.commit()
        inverses = None if from_kept else planned(self._database_url,
                                                  self.revision)
        lockwait.bound(conn, self._lock_budget.statement)
        conn.commit()
        waits = lockwait.Waits(conn, self._lock_budget,
                               conn.engine.url.database or "",
                               self._waiting)
        done = waits.retry(lambda careful: self._replay(conn, inverses),
                           True)
        lockwait.bound(conn, None)
        conn.commit()
        return dict(undone, undone=True, from_kept=from_kept,
                    inverses=done.inverses)

    def _replay(self, conn: Any, inverses: list[dict] | None) -> Any:
        from mistral_db_flows.revert import journal
        from mistral_db_flows.revert import replay

        return replay.revert_step(
            conn, self.revision, self._parent(), planned=inverses,
            before_commit=lambda c: journal.unkeep(c, self.revision))

    def _waiting(self, text: str) -> None:
        self.notifier.notify(flows.STEP_WAITING, {"text": text})

    def revert(self, result: Any = None, *args: Any, **kwargs: Any
               ) -> dict | None:
        """Re-apply the revision (None: nothing to do, or with
        ``on_failure = stop``)."""
        if not self._revert:
            return None
        from mistral_db_flows.revert import journal
        from mistral_db_flows.revert import replay

        parent = self._parent()
        # What the step used up is recorded again: its kept data, or
        # (it failed, so who knows) whatever the revision destroys.
        rekeep = (bool(result.get("from_kept")) if isinstance(result, dict)
                  else True)
        with dbapi.sqlalchemy_connection(self._database_url) as conn:
            current = self._versions(conn)
            if current == [self.revision]:
                if isinstance(result, dict):
                    return None  # nothing of it was undone
                # Failed half-way (MariaDB, SQLite: DDL kept): redo the
                # revision's upgrade over what is left; the journal, if
                # any, still holds its entries.
                replay.set_version(conn, self.revision, parent)
                conn.commit()
                journal_ = None
            elif current == ([parent] if parent else []):
                journal_ = (journal.Journal(self.revision)
                            if rekeep else None)
            else:
                return None
            migration.upgrade(self._database_url, self.revision,
                              connection=conn, check_existing=True,
                              journal=journal_)
            conn.commit()
            if journal.entries(conn, self.revision):
                journal.keep(conn, [self.revision], None)
            conn.commit()
        return {"revision": self.revision, "reapplied": True}


def factory(ctx) -> list[task.Task]:
    settings = ctx.settings or conf.Settings()
    budget = lockwait.Budget.of(settings)
    return [DowngradeFrom(ctx.database_url, rev, budget,
                          revert=settings.on_failure == "revert")
            for rev in ctx.pending]
