"""populate's undo journal, kept in the target database.

What a guarded populate overwrote or removed (the prior rows of the
system workflows and actions it updated or deleted, the ids it
inserted) is written in the same transaction as those writes, to a side
table of the database itself: like the migrate steps' journal
(``revert/``) it stays inside the database server's security domain,
and any host that resumes or finishes the run's revert reaches it. The
logbook keeps only the report. The table is named like the migrate
journal's tables (``mdf_revert_*``), so ``verify`` and the foreign
objects check ignore it; a run that ends well (or is abandoned) drops
it.

Plain DB-API through :class:`dbhandle.Handle` (no SQLAlchemy: populate
must stay cheap).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mistral_db_flows.revert import names

if TYPE_CHECKING:
    from mistral_db_flows import dbhandle

TABLE = names.PREFIX + "populate"

# MariaDB's TEXT holds 64 KB: a before-image of many workflows does not
# fit. The DDL comes first in its transaction: MariaDB commits at once.
_CREATE = {
    "mysql": "CREATE TABLE IF NOT EXISTS %s (run_id VARCHAR(64) NOT NULL, "
             "seq INTEGER NOT NULL, entry LONGTEXT NOT NULL, "
             "PRIMARY KEY (run_id, seq))" % TABLE,
}
_CREATE_ANY = ("CREATE TABLE IF NOT EXISTS %s (run_id VARCHAR(64) NOT NULL, "
               "seq INTEGER NOT NULL, entry TEXT NOT NULL, "
               "PRIMARY KEY (run_id, seq))" % TABLE)

def exists(handle: dbhandle.Handle) -> bool:
    query = names.exists_query(handle.dialect, TABLE)
    return bool(query and handle.rows(query)[0][0])


def prepare(handle: dbhandle.Handle) -> None:
    """Create the table before populate's first write (on MariaDB the
    DDL commits at once: nothing of populate's may precede it)."""
    handle.execute(_CREATE.get(handle.dialect, _CREATE_ANY)).close()


def save(handle: dbhandle.Handle, run_id: str,
         journal: dict[str, Any]) -> None:
    """Add ``journal`` (``PopulateReport.journal``) to run ``run_id``'s
    entries, in the caller's transaction. An attempt of the same run
    that committed earlier (killed before the run recorded it) keeps
    its own entry: both are undone, newest first."""
    seq = handle.rows("SELECT COALESCE(MAX(seq), 0) FROM %s WHERE "
                      "run_id = %%s" % TABLE, (run_id,))[0][0]
    handle.execute("INSERT INTO %s (run_id, seq, entry) VALUES "
                   "(%%s, %%s, %%s)" % TABLE,
                   (run_id, int(seq) + 1,
                    json.dumps(journal, sort_keys=True))).close()


def entries(handle: dbhandle.Handle, run_id: str) -> list[dict[str, Any]]:
    """Run ``run_id``'s journals, newest first (empty: nothing kept)."""
    if not exists(handle):
        return []
    return [json.loads(text) for (text,) in handle.rows(
        "SELECT entry FROM %s WHERE run_id = %%s ORDER BY seq DESC"
        % TABLE, (run_id,))]


def forget(handle: dbhandle.Handle, run_id: str) -> None:
    """Delete run ``run_id``'s entries (in the caller's transaction)."""
    handle.execute("DELETE FROM %s WHERE run_id = %%s" % TABLE,
                   (run_id,)).close()


def drop(handle: dbhandle.Handle) -> None:
    """Drop the table (the run ended well, was abandoned, or its
    revert is done)."""
    if exists(handle):
        handle.execute("DROP TABLE %s" % TABLE).close()
        handle.commit()
