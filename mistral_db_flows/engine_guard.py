"""A guard for a host's own engine running our flows (issue 12, item 3).

A host that adds ``api.upgrade_flow(...)`` to its own flow and runs its
own engine gets, inside ``with engine_guard.guarding(flow, settings)
as run:``, what the commands get:

* the database's run lock, held from before the engine starts until
  the block ends (a resumed run takes it again);
* a run record in our logbook (local, or the shared
  ``logbook_connection``): ``status`` shows it while it runs or after
  the process died, and ``abandon`` forgets it;
* resume: when the database has an interrupted run of the same flow
  (same operation name and step names), ``run.flow_detail`` is that
  run's, so the engine loaded with :meth:`HostRun.load` skips the steps
  already done and runs again the one that was running; an interrupted
  run of another flow or command is refused (``ResumeRefused``), as the
  commands refuse it;
* the end: the record says how the engine ended (finished, reverted,
  failed; left resumable when the engine did not end, e.g. on
  KeyboardInterrupt), and after a finished run old backups are pruned
  and our steps' revert journal is dropped.

The engine must be loaded with :meth:`HostRun.load` (the flow detail and
backend are the record's) and run inside the block; :meth:`HostRun.run`
runs it with the lock checked between steps (``LockLost`` stops it
resumable), a plain ``engine.run()`` holds the lock without checking it.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import flows
# Aliased: this module's own entry point is named guarding.
from mistral_db_flows import guarding as run_guard
from mistral_db_flows import resume
from mistral_db_flows import run_cleanup
from mistral_db_flows import runs
from mistral_db_flows import states
from mistral_db_flows import version_table


@dataclasses.dataclass
class HostRun:
    """The guarded run a host's engine runs in (see the module doc)."""

    flow: Any
    flow_detail: Any
    backend: Any
    resumed: bool
    guard: run_guard.Guard

    def load(self, store: dict | None = None, **options: Any) -> Any:
        """The engine of ``flow`` on this run's record (TaskFlow's
        ``engines.load`` options pass through)."""
        engines = flows._engines()
        # run_id keys the journals our steps keep in the database.
        merged = {"prior_backup": None, "run_id": self.flow_detail.uuid}
        merged.update(store or {})
        return engines.load(self.flow, store=merged,
                            flow_detail=self.flow_detail,
                            backend=self.backend, **options)

    def run(self, engine: Any) -> None:
        """Run ``engine`` with the lock checked before every step and
        every commit of our steps (the fence); a lost lock stops it,
        resumable, and raises LockLost."""
        try:
            halted = flows._drive(engine, self.guard.check)
        except exceptions.StepHalted as halt:
            halted = halt.error
        if halted is not None:
            raise halted


# TaskFlow's flow states, as the record keeps them.
_ENDED = {"SUCCESS": states.RunState.FINISHED,
          "REVERTED": states.RunState.REVERTED,
          "FAILURE": states.RunState.FAILED}


@contextlib.contextmanager
def guarding(flow: Any, settings: conf.Settings, *,
             target: str | None = None) -> Iterator[HostRun]:
    """Hold the database's lock and its run record around a host's
    engine (see the module doc). ``target`` is the revision the run is
    recorded as going to (``status`` shows it); by default, the target
    of the (last) flow of ours in ``flow``."""
    from mistral_db_flows import dbapi

    settings = runs.with_driver(settings)
    plan = flows.Plan(None, target or runs.planned_target(flow))
    with dbapi.sharing(settings.database_url) as shared:
        # Reachable, with a valid URL, before the lock is asked for.
        version_table.read_version(settings.database_url)
        with run_guard.guard(settings,
                             owner=flows.operation_of(flow)) as held:
            fd, resumed = resume.continue_or_start(held.store, flow, plan)
            run = HostRun(flow, fd, held.store.backend, resumed, held)
            shared.fence = held.fence
            try:
                yield run
            finally:
                shared.fence = None
                _settle(settings, held.store, fd)


def _settle(settings: conf.Settings, store: Any, fd: Any) -> None:
    """Record how the engine ended; an engine that did not end leaves
    the run resumable."""
    ended = _ENDED.get(str(fd.state or "").upper())
    if ended is None:
        return
    store.set_state(fd, ended)
    run_cleanup.prune_runs(store, settings.runs_keep)
    if ended is states.RunState.FINISHED:
        # Our steps' revert journal, as after a command's run.
        run_cleanup.drop_revert_journal(settings)
        taken = next((ad.results for ad in fd if ad.name == "backup"
                      and isinstance(ad.results, dict)), None)
        if taken:
            from mistral_db_flows import backup

            backup.prune(settings.resolved_backup_dir(),
                         settings.backup_keep)
