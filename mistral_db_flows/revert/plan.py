"""A revision's inverse, worked out without the database (``downgrade``).

The revision's ``upgrade()`` runs offline (as ``upgrade --sql`` does)
with a :class:`Planner` in Alembic's config attributes; every ``ddl``
operation tells it its arguments (:func:`ddl._note`) and it turns each
into the same inverse the journal would hold (:mod:`revert.record`), so
:mod:`revert.replay` applies either. An operation whose inverse needs
what only the database had before it (a dropped table or column, the
rows a statement rewrote or deleted, the shape of a dropped constraint)
makes the revision *need kept data*: ``downgrade`` then undoes it only
from the journal its run kept (``keep_revert_data``), or refuses.

No database and no Alembic here: :func:`migration.plan_revert` runs
the revision.
"""
from __future__ import annotations

import re
from typing import Any

# Statements a revision may run that change no data: MariaDB's
# prepared-statement steps that drop an implicit index (026; the index
# comes back from the keep_index before them).
_NO_DATA = re.compile(r"^\s*(SET\s+@|PREPARE|EXECUTE|DEALLOCATE)\b", re.I)
_INSERT_INTO = re.compile(r"^\s*INSERT\s+INTO\s+[`\"]?(\w+)", re.I)


class Planner:
    """What one revision's operations would need to be undone.

    ``inverses``: in the order the operations act (replayed newest
    first, like the journal's entries); ``needs``: why the revision
    needs kept data (the first reason found), or None.
    """

    def __init__(self, revision: str) -> None:
        self.revision = revision
        self.inverses: list[dict] = []
        self.needs: str | None = None
        self._created: set[str] = set()

    def note(self, what: str, *args: Any, **facts: Any) -> None:
        getattr(self, "_" + what)(*args, **facts)

    def _need(self, reason: str) -> None:
        if self.needs is None:
            self.needs = reason

    def _add(self, inverse: dict) -> None:
        self.inverses.append(inverse)

    # -- tables and columns --------------------------------------------

    def _create_table(self, table: str) -> None:
        self._created.add(table)
        self._add({"op": "drop_table", "table": table})

    def _drop_table(self, table: str) -> None:
        self._need("drops table %s" % table)

    def _add_column(self, table: str, column: str) -> None:
        self._add({"op": "drop_column", "table": table, "column": column})

    def _drop_column(self, table: str, column: str) -> None:
        self._need("drops column %s.%s" % (table, column))

    def _alter_column(self, table: str, column: str, *, existing: str,
                      nullable: bool | None,
                      existing_nullable: bool | None) -> None:
        # Back to the type it had; NULL-ness as it was (None: unchanged,
        # the replay keeps the live one). A widened type narrowed back
        # refuses, on the server, values that no longer fit: the step
        # fails and reverts, nothing is cut.
        was = existing_nullable
        if was is None and nullable is not None:
            was = not nullable
        self._add({"op": "alter_column", "table": table, "column": column,
                   "type": existing, "nullable": was})

    # -- indexes and constraints ---------------------------------------

    def _create_index(self, name: str, table: str,
                      columns: list[str]) -> None:
        self._add({"op": "drop_index", "name": name, "table": table})

    def _keep_index(self, name: str, table: str,
                    columns: list[str] | None = None) -> None:
        if columns is None:
            self._need("drops index %s of %s" % (name, table))
            return
        self._add({"op": "create_index", "name": name, "table": table,
                   "columns": list(columns), "unique": False})

    def _create_unique(self, name: str, table: str,
                       columns: list[str]) -> None:
        self._add({"op": "drop_unique", "name": name, "table": table,
                   "columns": list(columns)})

    def _drop_unique(self, name: str, table: str,
                     columns: list[str] | None) -> None:
        if columns is None:
            self._need("drops unique constraint %s of %s" % (name, table))
            return
        self._add({"op": "create_unique", "name": name, "table": table,
                   "columns": list(columns)})

    def _create_foreign_key(self, name: str | None, table: str,
                            columns: list[str], referred_table: str) -> None:
        self._add({"op": "drop_foreign_key", "name": name, "table": table,
                   "columns": list(columns),
                   "referred_table": referred_table})

    def _drop_foreign_key(self, name: str, table: str) -> None:
        self._need("drops foreign key %s of %s" % (name, table))

    # -- data ----------------------------------------------------------

    def _save_rows(self, table: str) -> None:
        self._need("rewrites or deletes rows of %s" % table)

    def _execute(self, statement: str) -> None:
        if _NO_DATA.match(statement):
            return
        into = _INSERT_INTO.match(statement)
        if into and into.group(1) in self._created:
            return  # rows of a table it made: dropping that undoes them
        self._need("runs a data statement (%s)"
                   % " ".join(statement.split()[:3]))

    # -- the answer ----------------------------------------------------

    def newest_first(self) -> list[dict]:
        """The inverses in the order they are applied."""
        return list(reversed(self.inverses))
