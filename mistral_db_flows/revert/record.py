"""What each ``ddl`` operation records before it acts: its inverse.

Adding costs one journal row; only operations that destroy something
(a dropped table, column, index or constraint, rewritten or deleted
rows) look at the live schema first, and only they copy data, set-based
and limited to what they destroy.
"""
from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from mistral_db_flows import schema_dump


def _quote(conn: Any, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _dialect(conn: Any) -> str:
    name = conn.dialect.name
    return "mysql" if name == "mariadb" else name


def native(conn: Any, type_: Any) -> str:
    """A reflected type as the backend's DDL text."""
    return schema_dump.native_type(sa.types.to_instance(type_),
                                   conn.dialect)


def table_ddl(conn: Any, table: str) -> list[str]:
    """Statements that recreate ``table`` empty with its live shape.

    MariaDB and SQLite say it themselves (exact, indexes and keys
    included); PostgreSQL's is rebuilt from reflection.
    """
    d = _dialect(conn)
    if d == "mysql":
        row = conn.execute(sa.text("SHOW CREATE TABLE %s"
                                   % _quote(conn, table))).one()
        return [row[1]]
    if d == "sqlite":
        found = conn.execute(sa.text(
            "SELECT sql FROM sqlite_master WHERE tbl_name = :t "
            "AND sql IS NOT NULL ORDER BY type DESC"), {"t": table})
        return [r[0] for r in found]
    from sqlalchemy.schema import CreateIndex, CreateTable

    reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
    out = [str(CreateTable(reflected).compile(dialect=conn.dialect))]
    out += [str(CreateIndex(ix).compile(dialect=conn.dialect))
            for ix in sorted(reflected.indexes, key=lambda i: str(i.name))]
    return out


def _primary_key(conn: Any, table: str) -> list[str]:
    return list(sa.inspect(conn).get_pk_constraint(table)
                ["constrained_columns"] or [])


# A read that sees the latest committed rows: on MySQL a plain SELECT
# may read the transaction's older snapshot, where a CREATE TABLE ...
# SELECT (which commits first) would not.
_LATEST = {"mysql": " LOCK IN SHARE MODE"}


def _copy(conn: Any, journal: Any, table: str, columns: Sequence[str],
          where: str | None = None) -> str | None:
    """Copy ``columns`` (empty: whole rows) of the rows ``where`` selects
    into a new side table; return its name, or None when no row is
    selected: there is nothing to keep, and an empty database's steps
    make no side table (on MariaDB a table costs tens of ms)."""
    source = "%s%s" % (_quote(conn, table),
                       " WHERE %s" % where if where else "")
    if conn.execute(sa.text("SELECT 1 FROM %s LIMIT 1%s" % (
            source, _LATEST.get(_dialect(conn), "")))).first() is None:
        return None
    copy = journal.next_copy(conn)
    # A copy is made before its journal entry, and on MySQL and SQLite
    # the CREATE commits by itself: a kill between the two leaves a
    # copy no entry names. This name is past every entry's, so a table
    # holding it is such an orphan.
    conn.execute(sa.text("DROP TABLE IF EXISTS %s" % copy))
    what = (", ".join(_quote(conn, c) for c in columns) if columns
            else "*")
    conn.execute(sa.text("CREATE TABLE %s AS SELECT %s FROM %s" % (
        copy, what, source)))
    return copy


def _made_here(conn: Any, journal: Any, table: str,
               column: str | None = None) -> bool:
    """Whether this step created ``table`` (or added ``column``): its
    revert drops that whole, so what the step does to it afterwards
    needs no inverse of its own, nor the look at the live schema that
    recording one takes (on MariaDB a reflection costs milliseconds,
    and an empty database's first step indexes every table it makes)."""
    return journal.is_new(conn, table, column)


# -- tables ----------------------------------------------------------------

def create_table(conn: Any, journal: Any, table: str) -> None:
    journal.record(conn, {"op": "drop_table", "table": table})


def drop_table(conn: Any, journal: Any, table: str) -> None:
    if _made_here(conn, journal, table):
        return
    shape = table_ddl(conn, table)
    copy = _copy(conn, journal, table, [])
    journal.record(conn, {"op": "restore_table", "table": table,
                          "ddl": shape, "copy": copy})


# -- columns ---------------------------------------------------------------

def add_column(conn: Any, journal: Any, table: str, column: str) -> None:
    if _made_here(conn, journal, table):
        return
    journal.record(conn, {"op": "drop_column", "table": table,
                          "column": column})


def drop_column(conn: Any, journal: Any, table: str, column: str) -> None:
    if _made_here(conn, journal, table, column):
        return
    have = {c["name"]: c for c in sa.inspect(conn).get_columns(table)}
    if column not in have:
        return
    keys = _primary_key(conn, table)
    entry = {"op": "restore_column", "table": table, "column": column,
             "type": native(conn, have[column]["type"]),
             "nullable": bool(have[column]["nullable"]), "keys": keys,
             "after": _before(list(have), column)}
    entry["copy"] = _copy(conn, journal, table, keys + [column])
    journal.record(conn, entry)


def _before(order: list[str], column: str) -> str | None:
    at = order.index(column)
    return order[at - 1] if at else None


def alter_column(conn: Any, journal: Any, table: str, column: str) -> None:
    if _made_here(conn, journal, table, column):
        return
    have = {c["name"]: c for c in sa.inspect(conn).get_columns(table)}
    if column not in have:
        return
    journal.record(conn, {"op": "alter_column", "table": table,
                          "column": column,
                          "type": native(conn, have[column]["type"]),
                          "nullable": bool(have[column]["nullable"])})


# -- indexes and constraints -----------------------------------------------

def create_index(conn: Any, journal: Any, name: str, table: str,
                 columns: Sequence[str]) -> None:
    if _made_here(conn, journal, table):
        return
    journal.record(conn, {"op": "drop_index", "name": name,
                          "table": table})
    if _dialect(conn) != "mysql":
        return
    # InnoDB drops the index it made for a foreign key once another
    # index can serve the key, and refuses to drop that other index
    # while the key has no other: the revert makes the old one again
    # first (recorded after, so replayed before).
    insp = sa.inspect(conn)
    keyed = [list(fk["constrained_columns"])
             for fk in insp.get_foreign_keys(table)]
    for index in insp.get_indexes(table):
        have = list(index["column_names"])
        if (index["name"] != name and have in keyed
                and list(columns)[:len(have)] == have):
            keep_index(conn, journal, index["name"], table)


def keep_index(conn: Any, journal: Any, name: str, table: str) -> None:
    """Record how to recreate index ``name`` if it is there now."""
    if _made_here(conn, journal, table):
        return
    for index in sa.inspect(conn).get_indexes(table):
        if index["name"] == name:
            journal.record(conn, {
                "op": "create_index", "name": name, "table": table,
                "columns": list(index["column_names"]),
                "unique": bool(index["unique"])})
            return


def create_unique(conn: Any, journal: Any, name: str, table: str,
                  columns: Sequence[str]) -> None:
    if _made_here(conn, journal, table):
        return
    journal.record(conn, {"op": "drop_unique", "name": name,
                          "table": table, "columns": list(columns)})


def drop_unique(conn: Any, journal: Any, name: str, table: str,
                columns: Sequence[str]) -> None:
    if _made_here(conn, journal, table):
        return
    journal.record(conn, {"op": "create_unique", "name": name,
                          "table": table, "columns": list(columns)})


def create_foreign_key(conn: Any, journal: Any, name: str | None,
                       table: str, columns: Sequence[str],
                       referred_table: str) -> None:
    # Recorded even on a table made here: a key between two new tables
    # (013) must go before the table it refers to can be dropped.
    journal.record(conn, {"op": "drop_foreign_key", "name": name,
                          "table": table, "columns": list(columns),
                          "referred_table": referred_table})


def drop_foreign_key(conn: Any, journal: Any, name: str,
                     table: str) -> None:
    if _made_here(conn, journal, table):
        return
    for fk in sa.inspect(conn).get_foreign_keys(table):
        if fk["name"] == name:
            journal.record(conn, {
                "op": "create_foreign_key", "name": name, "table": table,
                "columns": list(fk["constrained_columns"]),
                "referred_table": fk["referred_table"],
                "referred_columns": list(fk["referred_columns"]),
                "ondelete": (fk.get("options") or {}).get("ondelete")})
            return


# -- data ------------------------------------------------------------------

def save_rows(conn: Any, journal: Any, table: str, keys: Sequence[str],
              columns: Sequence[str] | None, where: str) -> None:
    """Copy what a data statement is about to rewrite or delete.

    ``columns``: the columns an UPDATE sets (its revert writes them
    back); None: the whole rows a DELETE removes (its revert inserts
    them again). Columns this step added need no copy (the revert drops
    them), nor does a table it created.
    """
    if journal.is_new(conn, table):
        return
    if columns is None:
        copy = _copy(conn, journal, table, [], where)
        journal.record(conn, {"op": "restore_rows", "table": table,
                              "keys": list(keys), "copy": copy})
        return
    kept = [c for c in columns if not journal.is_new(conn, table, c)]
    if not kept:
        return
    copy = _copy(conn, journal, table, list(keys) + kept, where)
    journal.record(conn, {"op": "restore_values", "table": table,
                          "keys": list(keys), "columns": kept,
                          "copy": copy})

