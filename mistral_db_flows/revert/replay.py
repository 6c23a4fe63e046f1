"""Replaying a step's journal: its inverses, newest first.

Each inverse goes through the same re-runnable ``ddl`` operations the
revisions use, with their look at the live schema on: an inverse of
something that never happened (MariaDB and SQLite commit DDL at once,
so an entry can outlive the operation it was written for) or that a
killed replay already applied is skipped. Data inverses are written so
that applying them twice changes nothing more.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import sqlalchemy as sa

from mistral_db_flows import migration
from mistral_db_flows.revert import journal


# Callables ``(revision, applied)`` run after each inverse a step's
# revert has applied (``applied`` of them so far): instrumentation, as
# dbhandle.AFTER_EXECUTE is for statements (the safety tests' fault
# plugin kills a run there, between two inverses of one step).
AFTER_INVERSE: list[Callable[[str, int], None]] = []


class _Native(sa.types.UserDefinedType):
    """A column type given as the backend's own DDL text."""

    cache_ok = True

    def __init__(self, text: str) -> None:
        self.text = text

    def get_col_spec(self, **kw: Any) -> str:
        return self.text


def _q(conn: Any, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _match(conn: Any, keys: list[str], left: str, right: str) -> str:
    return " AND ".join("%s.%s = %s.%s" % (left, _q(conn, k), right,
                                           _q(conn, k)) for k in keys)


def _has(conn: Any, table: str) -> bool:
    return sa.inspect(conn).has_table(table)


def _restore_table(conn: Any, inv: dict) -> None:
    table, copy = inv["table"], inv["copy"]
    if not _has(conn, table):
        for statement in inv["ddl"]:
            conn.exec_driver_sql(statement)
    empty = conn.execute(sa.text("SELECT COUNT(*) FROM %s"
                                 % _q(conn, table))).scalar() == 0
    if empty and _has(conn, copy):
        cols = _columns(conn, copy)
        conn.execute(sa.text("INSERT INTO %s (%s) SELECT %s FROM %s"
                             % (_q(conn, table), cols, cols, copy)))


def _write_back(conn: Any, table: str, keys: list[str],
                columns: list[str], copy: str) -> None:
    """Set ``columns`` of the rows in ``copy`` back to the copied values."""
    t = _q(conn, table)
    found = "SELECT 1 FROM %s s WHERE %s" % (copy,
                                              _match(conn, keys, "s", t))
    sets = ", ".join(
        "%s = (SELECT s.%s FROM %s s WHERE %s)"
        % (_q(conn, c), _q(conn, c), copy, _match(conn, keys, "s", t))
        for c in columns)
    conn.execute(sa.text("UPDATE %s SET %s WHERE EXISTS (%s)"
                         % (t, sets, found)))


def _restore_column(conn: Any, inv: dict) -> None:
    from mistral_db_flows import ddl

    table, column = inv["table"], inv["column"]
    have = [c["name"] for c in sa.inspect(conn).get_columns(table)]
    if column not in have:
        if conn.dialect.name in ("mysql", "mariadb"):
            # Back in its place (the reference schema has an order).
            where = (" AFTER %s" % _q(conn, inv["after"]) if inv["after"]
                     else " FIRST")
            conn.exec_driver_sql("ALTER TABLE %s ADD COLUMN %s %s NULL%s"
                                 % (_q(conn, table), _q(conn, column),
                                    inv["type"], where))
        else:
            ddl.add_column(table, sa.Column(column, _Native(inv["type"]),
                                            nullable=True))
    if _has(conn, inv["copy"]):
        _write_back(conn, table, inv["keys"], [column], inv["copy"])
    if not inv["nullable"]:
        ddl.alter_column(table, column, existing_type=_Native(inv["type"]),
                         nullable=False)


def _columns(conn: Any, copy: str) -> str:
    """The copy's columns, by name: a table rebuilt since the copy was
    taken (SQLite's batch mode, a kept copy replayed by ``downgrade``
    after later revisions) may have them in another order."""
    return ", ".join(_q(conn, c["name"])
                     for c in sa.inspect(conn).get_columns(copy))


def _restore_rows(conn: Any, inv: dict) -> None:
    if not _has(conn, inv["copy"]):
        return
    t = _q(conn, inv["table"])
    cols = _columns(conn, inv["copy"])
    conn.execute(sa.text(
        "INSERT INTO %s (%s) SELECT %s FROM %s s WHERE NOT EXISTS "
        "(SELECT 1 FROM %s WHERE %s)"
        % (t, cols, cols, inv["copy"], t,
           _match(conn, inv["keys"], "s", t))))


def _drop_foreign_key(inv: dict) -> None:
    from mistral_db_flows import ddl
    from alembic import op

    name = inv["name"]
    if name is None and ddl.offline():
        from mistral_db_flows import exceptions

        raise exceptions.BadTarget(
            None, "the foreign key %s(%s) -> %s was named by the server, "
            "so its DROP cannot be written offline: run the downgrade "
            "online" % (inv["table"], ", ".join(inv["columns"]),
                        inv["referred_table"]))
    if name is None:  # unnamed when made: the backend named it
        for fk in sa.inspect(op.get_bind()).get_foreign_keys(inv["table"]):
            if (list(fk["constrained_columns"]) == inv["columns"]
                    and fk["referred_table"] == inv["referred_table"]):
                name = fk["name"]
        if name is None:
            return
    ddl.drop_foreign_key(name, inv["table"])


def _keep_key_index(conn: Any, name: str, table: str) -> None:
    """Before ``name`` goes on MySQL: if it is the only index serving a
    foreign key, make the one InnoDB would make for that key (named
    after the key, or after its first column when the server named the
    key). InnoDB refuses to leave a key without an index, and a plan
    (``downgrade``) cannot know which index the server dropped for it.
    A journal's own ``create_index`` of that index, replayed before,
    makes this a no-op."""
    from mistral_db_flows import ddl

    insp = sa.inspect(conn)
    indexes = insp.get_indexes(table)
    going = next((i for i in indexes if i["name"] == name), None)
    if going is None:
        return
    for fk in insp.get_foreign_keys(table):
        cols = list(fk["constrained_columns"])
        if list(going["column_names"])[:len(cols)] != cols:
            continue
        if any(list(i["column_names"])[:len(cols)] == cols
               for i in indexes if i["name"] != name):
            continue
        auto = str(fk["name"] or "").startswith("%s_ibfk_" % table)
        ddl.create_index(cols[0] if auto or not fk["name"] else fk["name"],
                         table, cols)


def apply(conn: Any, inv: dict) -> None:
    """Apply one inverse (inside an Alembic operations context)."""
    from mistral_db_flows import ddl

    kind, table = inv["op"], inv["table"]
    if kind == "drop_table":
        ddl.drop_table(table)
    elif kind == "drop_column":
        ddl.drop_column(table, inv["column"])
    elif kind == "drop_index":
        if conn is not None and conn.dialect.name in ("mysql", "mariadb"):
            _keep_key_index(conn, inv["name"], table)
        ddl.drop_index(inv["name"], table)
    elif kind == "drop_unique":
        ddl.drop_unique(inv["name"], table, columns=inv["columns"])
    elif kind == "drop_foreign_key":
        _drop_foreign_key(inv)
    elif kind == "alter_column":
        nullable = inv["nullable"]
        if nullable is None and not ddl.offline():
            # A plan that never saw it changed: keep the live one
            # (MySQL's MODIFY would otherwise make it NULL).
            nullable = next(
                (bool(c["nullable"]) for c in sa.inspect(conn).get_columns(
                    table) if c["name"] == inv["column"]), None)
        ddl.alter_column(table, inv["column"], existing_type=sa.Text(),
                         type_=_Native(inv["type"]), nullable=nullable)
    elif kind == "create_index":
        ddl.create_index(inv["name"], table, inv["columns"],
                         unique=inv["unique"])
    elif kind == "create_unique":
        ddl.create_unique(inv["name"], table, inv["columns"])
    elif kind == "create_foreign_key":
        ddl.create_foreign_key(inv["name"], table, inv["columns"],
                               inv["referred_table"],
                               inv["referred_columns"],
                               ondelete=inv["ondelete"])
    elif kind == "restore_table":
        _restore_table(conn, inv)
    elif kind == "restore_column":
        _restore_column(conn, inv)
    elif kind == "restore_values":
        _write_back(conn, table, inv["keys"], inv["columns"], inv["copy"])
    elif kind == "restore_rows":
        _restore_rows(conn, inv)
    else:
        raise ValueError("unknown inverse operation %r" % kind)


def set_version(conn: Any, revision: str, parent: str | None) -> bool:
    """Move ``alembic_version`` from ``revision`` to ``parent``; whether
    it was at ``revision``."""
    if not _has(conn, "alembic_version"):
        return False
    if parent is None:
        moved = conn.execute(sa.text("DELETE FROM alembic_version "
                                     "WHERE version_num = :r"),
                             {"r": revision})
    else:
        moved = conn.execute(sa.text("UPDATE alembic_version "
                                     "SET version_num = :p "
                                     "WHERE version_num = :r"),
                             {"p": parent, "r": revision})
    return bool(moved.rowcount)


@dataclasses.dataclass(frozen=True)
class Undone:
    """What a step's revert did."""

    parent: str | None
    inverses: int
    version_moved: bool


def revert_step(conn: Any, revision: str, parent: str | None, *,
                move_version: bool = True,
                planned: list[dict] | None = None,
                before_commit: Any = None) -> Undone:
    """Undo ``revision`` on ``conn`` from its journal (or from
    ``planned`` inverses, in the order to apply); set the version back
    to ``parent`` and forget the entries; ``before_commit(conn)`` last.
    Commits (one transaction on PostgreSQL)."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    inverses = (journal.entries(conn, revision) if planned is None
                else list(enumerate(planned)))
    context = MigrationContext.configure(
        connection=conn,
        opts={"render_as_batch": conn.dialect.name == "sqlite",
              "mdf_attributes": {"check_existing": True}})
    with migration.serialised(), Operations.context(context):
        for applied, (_seq, inverse) in enumerate(inverses, 1):
            apply(conn, inverse)
            for observer in list(AFTER_INVERSE):
                observer(revision, applied)
    moved = bool(move_version or inverses) and set_version(conn, revision,
                                                           parent)
    journal.forget(conn, revision)
    if before_commit is not None:
        before_commit(conn)
    conn.commit()
    return Undone(parent, len(inverses), moved)


def script(url_dialect: str, steps: list[tuple[str, str | None, list]],
           output: Any) -> None:
    """Write the SQL of planned inverses, offline: ``steps`` are
    ``(revision, parent, inverses)`` in the order to undo them."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        dialect_name=url_dialect,
        opts={"as_sql": True, "output_buffer": output,
              "literal_binds": True,
              "mdf_attributes": {"check_existing": False}})
    from alembic.util import exc as alembic_exc

    from mistral_db_flows import exceptions

    with migration.serialised(), Operations.context(context):
        from alembic import op

        for revision, parent, inverses in steps:
            output.write("-- undo %s\n\n" % revision)
            try:
                for inverse in inverses:
                    apply(None, inverse)
            except alembic_exc.CommandError as exc:
                # e.g. SQLite's batch mode, which must reflect the table.
                raise exceptions.BadTarget(
                    revision, "undoing %s cannot be written as offline "
                    "SQL: %s" % (revision, str(exc).split(". ")[0])
                ) from None
            if parent is None:
                op.execute("DELETE FROM alembic_version WHERE "
                           "version_num = '%s'" % revision)
            else:
                op.execute("UPDATE alembic_version SET version_num = '%s' "
                           "WHERE version_num = '%s'" % (parent, revision))
