"""Re-runnable schema operations for the revisions in ``migrations/``.

MySQL, MariaDB and SQLite commit DDL statement by statement, so a crash
can stop a revision half-way. Every operation here first looks at the
live schema and skips work that is already done with the intended shape;
an existing object of the same name but another shape raises
:class:`~mistral_db_flows.exceptions.SchemaConflict`.

Offline (``--sql``) there is no database to look at: every operation is
emitted as it would run on the empty-at-that-revision schema, and names
that differ per backend are chosen from the dialect (:func:`name`).

SQLite cannot alter constraints or column types in place; those
operations go through Alembic's batch mode (copy and rename the table).

With a revert journal (``config.attributes["revert_journal"]``, set by
the migrate step) every operation first records its inverse in the
target database (:mod:`mistral_db_flows.revert`), right before it acts.
With a revert plan (``config.attributes["revert_plan"]``, offline) the
operations tell it their arguments instead, and it works out their
inverses without a database (``downgrade``, :mod:`revert.plan`).
"""
from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from alembic import op

from mistral_db_flows import ddl_shapes as shapes
from mistral_db_flows import exceptions
from mistral_db_flows.revert import record

PerDialect = Mapping[str, Any]


# -- where we are ----------------------------------------------------------

def dialect() -> str:
    """``postgresql``, ``mysql`` (MariaDB included) or ``sqlite``."""
    name = op.get_context().dialect.name
    return "mysql" if name == "mariadb" else name


def _attributes() -> Mapping[str, Any]:
    """The caller's settings: Alembic's config attributes in a revision,
    the operations context's options when a journal is replayed."""
    ctx = op.get_context()
    if ctx.environment_context is not None:
        return ctx.environment_context.config.attributes
    return ctx.opts.get("mdf_attributes", {})


def offline() -> bool:
    return bool(op.get_context().as_sql)


def name(value: str | PerDialect | None) -> Any:
    """Pick a per-backend value; SQLite defaults to PostgreSQL's."""
    if not isinstance(value, Mapping):
        return value
    d = dialect()
    if d in value:
        return value[d]
    if d == "sqlite" and "postgresql" in value:
        return value["postgresql"]
    return value.get("default")


def checking() -> bool:
    """Whether operations look at the live schema before acting.

    On by default. A flow step may first try a revision without the
    checks (``config.attributes["check_existing"] = False``), which is
    much faster, and re-run it with them when that attempt fails: every
    operation here fails loudly when its work was already done.
    """
    return bool(_attributes().get("check_existing", True))


def _journaling() -> bool:
    return not offline() and \
        _attributes().get("revert_journal") is not None


def _planner() -> Any:
    return _attributes().get("revert_plan")


def _note(what: str, *args: Any, **facts: Any) -> None:
    """Record the inverse of the operation about to act (online, with
    a journal only); or tell a revert plan about it, with ``facts``
    (what the plan needs that the journal reads from the live schema)."""
    planner = _planner()
    if planner is not None:
        planner.note(what, *args, **facts)
    elif _journaling():
        getattr(record, what)(op.get_bind(),
                              _attributes()["revert_journal"], *args)


def _inspector() -> sa.Inspector | None:
    if offline() or not checking():
        return None
    return sa.inspect(op.get_bind())


def _batch(table: str):
    """Batch mode where the backend cannot alter in place."""
    if dialect() == "sqlite":
        _drop_stale_batch_copy(table)
    return op.batch_alter_table(
        table, recreate="always" if dialect() == "sqlite" else "never")


def _drop_stale_batch_copy(table: str) -> None:
    """Remove the copy a crashed SQLite batch left behind.

    pysqlite commits CREATE TABLE at once but opens a transaction at the
    following INSERT, so a batch that dies before its revision commits
    keeps the original table and leaves ``_alembic_tmp_<table>``, which
    would make the next batch on that table fail. With the original
    still there, the copy holds nothing that is not in it.
    """
    insp = _inspector()
    stale = "_alembic_tmp_%s" % table
    if insp is not None and insp.has_table(stale) and insp.has_table(table):
        op.drop_table(stale)


# -- types -----------------------------------------------------------------

long_text = shapes.long_text
medium_text = shapes.medium_text


def _native(type_: Any) -> str:
    return shapes.native(type_, op.get_context().dialect)


# -- tables ----------------------------------------------------------------

def has_table(table: str) -> bool:
    """A question a revision decides on (always asked online; offline
    the answer is no)."""
    if offline():
        return False
    return sa.inspect(op.get_bind()).has_table(table)


def create_table(table: str, *items: Any, **kw: Any) -> None:
    """Create ``table`` unless it exists with the same columns.

    Indexes are not part of the check: create them with
    :func:`create_index`, which is itself re-runnable.
    """
    insp = _inspector()
    if insp is not None and insp.has_table(table):
        wanted = [i for i in items if isinstance(i, sa.Column)]
        have = shapes.columns(insp, table)
        same = (list(have) == [c.name for c in wanted] and all(
            shapes.same_generic(_native(c.type), _native(have[c.name]["type"]))
            and bool(c.nullable) == bool(have[c.name]["nullable"])
            for c in wanted))
        if not same:
            raise exceptions.SchemaConflict(
                "table", table, table,
                expected=", ".join(
                    "%s %s%s" % (c.name, _native(c.type),
                                 "" if c.nullable else " NOT NULL")
                    for c in wanted),
                found=shapes.describe_columns(have, op.get_context().dialect))
        return
    if dialect() == "mysql":
        kw.setdefault("mysql_engine", "InnoDB")
    _note("create_table", table)
    op.create_table(table, *items, **kw)


def drop_table(table: str) -> None:
    insp = _inspector()
    if insp is not None and not insp.has_table(table):
        return
    _note("drop_table", table)
    op.drop_table(table)


# -- columns ---------------------------------------------------------------

def add_column(table: str, column: sa.Column) -> None:
    insp = _inspector()
    if insp is not None:
        have = shapes.columns(insp, table).get(column.name)
        if have is not None:
            if not (shapes.same_generic(_native(column.type),
                                  _native(have["type"]))
                    and bool(column.nullable) == bool(have["nullable"])):
                raise exceptions.SchemaConflict(
                    "column", "%s.%s" % (table, column.name), table,
                    expected="%s%s" % (_native(column.type),
                                       "" if column.nullable
                                       else " NOT NULL"),
                    found="%s%s" % (_native(have["type"]),
                                    "" if have["nullable"] else " NOT NULL"))
            return
    _note("add_column", table, column.name)
    if dialect() == "sqlite" and (column.foreign_keys or column.constraints):
        with _batch(table) as batch:
            batch.add_column(column)
    else:
        op.add_column(table, column)


def drop_column(table: str, column: str) -> None:
    insp = _inspector()
    if insp is not None and column not in shapes.columns(insp, table):
        return
    _note("drop_column", table, column)
    if dialect() == "sqlite":
        with _batch(table) as batch:
            batch.drop_column(column)
    else:
        op.drop_column(table, column)


def alter_column(table: str, column: str, *, existing_type: Any,
                 type_: Any = None, nullable: bool | None = None,
                 existing_nullable: bool | None = None,
                 **kw: Any) -> None:
    """Change a column's type and/or nullability unless already done."""
    insp = _inspector()
    if insp is not None:
        have = shapes.columns(insp, table).get(column)
        if have is None:
            raise exceptions.SchemaConflict(
                "column", "%s.%s" % (table, column), table,
                expected="an existing column", found="no such column")
        type_done = type_ is None or shapes.same_native(
            _native(type_), _native(have["type"]))
        null_done = nullable is None or bool(nullable) == bool(
            have["nullable"])
        if type_done and null_done:
            return
        if existing_nullable is None:
            existing_nullable = bool(have["nullable"])
    _note("alter_column", table, column,
          existing=_native(existing_type),
          nullable=nullable, existing_nullable=existing_nullable)
    args = dict(existing_type=existing_type, type_=type_, nullable=nullable,
                existing_nullable=existing_nullable, **kw)
    if dialect() == "sqlite":
        with _batch(table) as batch:
            batch.alter_column(column, **args)
    else:
        op.alter_column(table, column, **args)


# -- indexes and constraints -------------------------------------------------

def create_index(index_name: str | PerDialect, table: str,
                 columns: list[str], unique: bool = False,
                 **kw: Any) -> None:
    index: str = name(index_name)
    insp = _inspector()
    if insp is not None:
        have = shapes.index_by_name(insp, table).get(index)
        if have is not None:
            if (list(have["column_names"]) != list(columns)
                    or bool(have["unique"]) != bool(unique)):
                raise exceptions.SchemaConflict(
                    "index", index, table,
                    expected="%s(%s)" % ("unique " if unique else "",
                                         ", ".join(columns)),
                    found="%s(%s)" % ("unique " if have["unique"] else "",
                                      ", ".join(have["column_names"])))
            return
    _note("create_index", index, table, list(columns))
    op.create_index(index, table, columns, unique=unique, **kw)


def drop_index(index_name: str | PerDialect, table: str) -> None:
    index: str = name(index_name)
    insp = _inspector()
    if insp is not None and index not in shapes.index_by_name(insp, table):
        return
    _note("keep_index", index, table)
    op.drop_index(index, table_name=table)


def create_unique(constraint_name: str | PerDialect, table: str,
                  columns: list[str]) -> None:
    constraint: str = name(constraint_name)
    insp = _inspector()
    if insp is not None:
        have = shapes.unique_by_name(insp, table).get(constraint)
        if have is not None:
            if have != list(columns):
                raise exceptions.SchemaConflict(
                    "unique constraint", constraint, table,
                    expected="(%s)" % ", ".join(columns),
                    found="(%s)" % ", ".join(have))
            return
    _note("create_unique", constraint, table, columns)
    if dialect() == "sqlite":
        with _batch(table) as batch:
            batch.create_unique_constraint(constraint, columns)
    else:
        op.create_unique_constraint(constraint, table, columns)


def drop_unique(constraint_name: str | PerDialect, table: str, *,
                columns: list[str] | None = None) -> None:
    """Drop a unique constraint if it is there.

    With ``columns``, only while it still covers exactly those columns:
    where a revision replaces a constraint by one of the same name (MySQL
    reuses "name"), a re-run must not drop the replacement.
    """
    constraint: str = name(constraint_name)
    insp = _inspector()
    if insp is not None:
        have = shapes.unique_by_name(insp, table).get(constraint)
        if have is None or (columns is not None
                            and have != list(columns)):
            return
    if _planner() is not None:
        _note("drop_unique", constraint, table, columns)
    elif _journaling():
        live = shapes.unique_by_name(sa.inspect(op.get_bind()), table)
        if constraint in live:
            _note("drop_unique", constraint, table, live[constraint])
    if dialect() == "sqlite":
        with _batch(table) as batch:
            batch.drop_constraint(constraint, type_="unique")
    else:
        op.drop_constraint(constraint, table, type_="unique")


def create_foreign_key(constraint_name: str | PerDialect | None, table: str,
                       columns: list[str], referred_table: str,
                       referred_columns: list[str],
                       ondelete: str | None = None) -> None:
    constraint: str | None = name(constraint_name)
    insp = _inspector()
    if insp is not None and constraint is None:
        # Unnamed: the backend names it (MySQL also names the implicit
        # index after the column only then), so "already done" means a
        # key with the same columns and target.
        for fk in insp.get_foreign_keys(table):
            if (list(fk["constrained_columns"]) == list(columns)
                    and fk["referred_table"] == referred_table):
                return
    elif insp is not None and constraint is not None:
        have = shapes.fk_by_name(insp, table).get(constraint)
        if have is not None:
            if (list(have["constrained_columns"]) != list(columns)
                    or have["referred_table"] != referred_table):
                raise exceptions.SchemaConflict(
                    "foreign key", constraint, table,
                    expected="(%s) -> %s" % (", ".join(columns),
                                             referred_table),
                    found="(%s) -> %s" % (
                        ", ".join(have["constrained_columns"]),
                        have["referred_table"]))
            return
    _note("create_foreign_key", constraint, table, columns, referred_table)
    if dialect() == "sqlite":
        with _batch(table) as batch:
            batch.create_foreign_key(constraint, referred_table, columns,
                                     referred_columns, ondelete=ondelete)
    else:
        op.create_foreign_key(constraint, table, referred_table, columns,
                              referred_columns, ondelete=ondelete)


def drop_foreign_key(constraint_name: str | PerDialect,
                     table: str) -> None:
    constraint: str = name(constraint_name)
    insp = _inspector()
    if insp is not None and constraint not in shapes.fk_by_name(insp, table):
        return
    _note("drop_foreign_key", constraint, table)
    if dialect() == "sqlite":
        with _batch(table) as batch:
            batch.drop_constraint(constraint, type_="foreignkey")
    else:
        op.drop_constraint(constraint, table, type_="foreignkey")


# -- data ------------------------------------------------------------------

def execute(statement: str | sa.sql.Executable) -> None:
    """Run a set-based data statement (itself safe to run twice)."""
    if isinstance(statement, str):
        statement = sa.text(statement)
    planner = _planner()
    if planner is not None:
        planner.note("execute", str(statement))
    op.execute(statement)


def save_rows(table: str, keys: list[str], columns: list[str] | None,
              where: str | sa.ColumnElement) -> None:
    """Keep what the next data statement rewrites, for its revert.

    ``keys``: the table's primary key; ``columns``: the columns an
    UPDATE sets, or None for the whole rows a DELETE removes; ``where``:
    the statement's own predicate (SQL text, or an expression this
    dialect compiles), so exactly the affected rows are copied,
    set-based. Values in columns this step added cost nothing.
    """
    planner = _planner()
    if planner is not None:
        planner.note("save_rows", table)
    if not _journaling():
        return
    bind = op.get_bind()
    if not isinstance(where, str):
        where = str(where.compile(dialect=bind.dialect,
                                  compile_kwargs={"literal_binds": True}))
    record.save_rows(bind, _attributes()["revert_journal"], table, keys,
                     columns, where)


def keep_index(index_name: str | PerDialect, table: str,
               columns: list[str] | None = None) -> None:
    """Record how to recreate an index that a raw statement may drop
    (``columns``: its columns, for a revert plan made without the
    database)."""
    _note("keep_index", name(index_name), table, columns=columns)
