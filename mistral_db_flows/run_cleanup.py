"""What goes when a run ends: its revert journal, old runs, old backups.

Shared by the run engine (:mod:`runs`), ``abandon``
(:mod:`interrupted`) and a host's own engine (:mod:`engine_guard`).
"""
from __future__ import annotations

import logging

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import logbook

LOG = logging.getLogger(__name__)


def drop_revert_journal(settings: conf.Settings, *,
                        populated: bool = True, keep: bool = False,
                        run_id: str | None = None) -> None:
    """The run ended well (or was abandoned): its steps' revert data
    goes, so the schema is upstream's again and no later command undoes
    that run's steps; with ``keep`` (``keep_revert_data``) it stays as
    kept data that only ``downgrade`` uses, and data kept by earlier
    runs is never dropped here. ``populated``: the run may have had a
    populate step, whose journal goes too (one more query; an upgrade
    skips it)."""
    from mistral_db_flows import dbapi
    from mistral_db_flows import revert

    try:
        if populated:
            from mistral_db_flows import populate

            populate.drop_journal(settings.database_url)
        if not revert.pending_in(settings.database_url):
            return
    except exceptions.DatabaseUnreachable:
        return  # e.g. a SQLite file the run never created: no journal
    with dbapi.sqlalchemy_connection(settings.database_url) as conn:
        revert.settle(conn, keep=keep, run_id=run_id)


def prune_runs(store: logbook.RunStore, keep: int) -> None:
    """Keep the logbook to the newest ``keep`` ended runs; a failure to
    prune never turns a run's outcome into an error."""
    try:
        store.prune(keep)
    except Exception as exc:  # the run's outcome is what matters
        LOG.warning("could not prune old runs from the logbook: %s", exc)



def prune_backups(settings: conf.Settings, taken: dict | None) -> None:
    if not taken:
        return
    from mistral_db_flows import backup

    backup.prune(settings.resolved_backup_dir(), settings.backup_keep)

