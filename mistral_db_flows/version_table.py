"""The revision a database is stamped with, read without Alembic.

``alembic_version`` holds the current revision id(s). ``current`` and
``status`` read it with the bare DB-API driver when the URL is plain, so
that they never import Alembic or SQLAlchemy; other URLs go through
SQLAlchemy. A migrate step reads it on its SQLAlchemy connection with
two plain queries (Alembic's MigrationContext costs several
milliseconds to set up), unless the step before it on the same
connection left what Alembic wrote (:func:`remember`).
"""
from __future__ import annotations

import os
from typing import Any

from mistral_db_flows import dbapi
from mistral_db_flows import exceptions
from mistral_db_flows import migration
from mistral_db_flows import urls

# Whether alembic_version exists, per backend (one row, one column).
VERSION_TABLE_EXISTS = {
    "postgresql": "SELECT to_regclass('alembic_version') IS NOT NULL",
    "mysql": "SELECT COUNT(*) FROM information_schema.tables WHERE "
             "table_schema = DATABASE() AND table_name = 'alembic_version'",
    "sqlite": "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
              "AND name = 'alembic_version'",
}
_SELECT = "SELECT version_num FROM alembic_version"


def read_version(url: str) -> list[str]:
    """The revision ids in ``alembic_version`` ([] when unversioned).

    Uses the bare driver when the URL is plain, SQLAlchemy otherwise.
    Raises BadUrl or DatabaseUnreachable.
    """
    parsed = dbapi.parse(url)
    found = None
    if parsed.direct() is not None:
        if parsed.backend == "sqlite":
            found = _read_sqlite(parsed, url)
        else:
            found = _read_server(url)
    if found is None:
        found = _read_sqlalchemy(url)
    return sorted(found)


def _read_sqlite(parsed: urls.Url, url: str) -> list[str] | None:
    import sqlite3
    from urllib import parse

    path = parsed.database
    if path in (None, "", ":memory:"):
        return []
    if not os.path.exists(path):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise exceptions.DatabaseUnreachable(
                urls.masked(url), "folder %s does not exist" % folder)
        # Reading must not create the file (sqlite3 would).
        return []
    try:
        conn = sqlite3.connect("file:%s?mode=ro"
                               % parse.quote(os.path.abspath(path)),
                               uri=True)
    except sqlite3.Error:
        return None
    try:
        return [r[0] for r in conn.execute(_SELECT)]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        return None
    except sqlite3.DatabaseError as exc:
        raise exceptions.DatabaseUnreachable(urls.masked(url),
                                             str(exc)) from None
    finally:
        conn.close()


def _read_server(url: str) -> list[str] | None:
    """PostgreSQL or MySQL through psycopg2 / PyMySQL (None: no driver).

    In a run's :func:`dbapi.sharing` block, on the run's connection.
    """
    handle = dbapi.open_server(url)
    if handle is None:
        return None
    try:
        if not handle.rows(VERSION_TABLE_EXISTS[handle.dialect])[0][0]:
            return []
        return [r[0] for r in handle.rows(_SELECT)]
    finally:
        handle.close()


def _read_sqlalchemy(url: str) -> list[str]:
    import sqlalchemy as sa

    conn = migration.connect(url)
    try:
        if not sa.inspect(conn).has_table("alembic_version"):
            return []
        return [r[0] for r in conn.execute(sa.text(_SELECT))]
    except sa.exc.DBAPIError as exc:
        # e.g. a SQLite "database" that is some other file.
        raise exceptions.DatabaseUnreachable(
            urls.masked(url), urls.first_line(exc.orig, url)) from None
    finally:
        conn.close()
        conn.engine.dispose()


def current_revisions(connection: Any) -> list[str]:
    """The revision ids in ``alembic_version`` on a SQLAlchemy
    ``connection`` (empty when unversioned), in a transaction the
    caller ends."""
    name = connection.dialect.name
    exists = VERSION_TABLE_EXISTS.get("mysql" if name == "mariadb" else name)
    if exists is None:  # another backend: ask SQLAlchemy
        import sqlalchemy as sa

        if not sa.inspect(connection).has_table("alembic_version"):
            return []
    elif not connection.exec_driver_sql(exists).scalar():
        return []
    return sorted(r[0] for r in connection.exec_driver_sql(_SELECT))


# A migrate step that has just read the version back after its upgrade
# leaves it here for the next step on the same connection (the run's,
# under the run's lock); the next step takes it once. Whatever else
# moves the version on that connection (a step's revert) forgets it.
_KNOWN = "mdf_known_revisions"


def remember(connection: Any, found: list[str]) -> None:
    connection.info[_KNOWN] = list(found)


def take_known(connection: Any) -> list[str] | None:
    """What :func:`remember` left on ``connection`` (once), else None."""
    return connection.info.pop(_KNOWN, None)


def forget_known(connection: Any) -> None:
    connection.info.pop(_KNOWN, None)
