"""Which database a URL reaches, asked of the server, not read from the
spelling: one identity for the logbook, the run lock and the backups.

``localhost`` or ``127.0.0.1``, the default port written or not, a
driver named or not, a Unix socket or TCP, another user: every URL that
reaches one database gives one identity, so a run killed through one
spelling is found (and locked against) through any other.

* PostgreSQL: the cluster's ``system_identifier`` (``pg_control_system()``)
  and ``current_database()``;
* MariaDB/MySQL: ``@@server_uuid`` where MySQL has it, else the server's
  ``@@hostname`` and ``@@port``; and ``DATABASE()``;
* SQLite: the database file's real path.

Asking costs one round trip, so a run asks once (on its lock's session)
and hands the answer on. An identity never holds a user or password: it
names logbook records and backup files. The server is asked through the
plain driver (``dbapi``), so ``status`` does not import SQLAlchemy.
"""
from __future__ import annotations

import os
from typing import Any

from mistral_db_flows import exceptions
from mistral_db_flows import urls

_POSTGRESQL = ("SELECT system_identifier, current_database() "
               "FROM pg_control_system()")
# Where pg_control_system() is not granted (some hosted services): the
# address and port the server answers on, as the server sees them.
_POSTGRESQL_FALLBACK = (
    "SELECT coalesce(host(inet_server_addr()), 'local') || ':' "
    "|| current_setting('port'), current_database()")
_MYSQL = "SELECT @@hostname, @@port, DATABASE(), VERSION()"


def of_url(url: str) -> str:
    """The identity of the database at ``url`` (a server is asked, on
    the connection ``dbapi.sharing`` lends, if any). Raises BadUrl or
    DatabaseUnreachable."""
    parsed = _parse(url)
    if parsed.backend == "sqlite":
        return of_sqlite(parsed)
    from mistral_db_flows import dbapi

    handle = dbapi.connect(url)
    try:
        errors = handle.driver_errors() or (Exception,)
        try:
            return of_handle(handle)
        except errors as exc:
            raise exceptions.DatabaseUnreachable(
                urls.masked(url), urls.first_line(exc, url)) from None
    finally:
        handle.close()


def of_sqlite(parsed: urls.Url) -> str:
    """A SQLite database's identity: its file's real path (the file
    need not exist yet)."""
    path = parsed.sqlite_path
    return "sqlite://%s" % (os.path.realpath(path) if path else ":memory:")


def of_handle(handle: Any) -> str:
    """The identity of the server database ``handle`` (a ``dbapi``
    handle) is connected to; the driver's errors pass through."""
    if handle.dialect == "postgresql":
        try:
            system, database = handle.rows(_POSTGRESQL)[0]
        except handle.driver_errors():
            handle.rollback()
            system, database = handle.rows(_POSTGRESQL_FALLBACK)[0]
        return "postgresql:%s/%s" % (system, database)
    if handle.dialect == "mysql":
        host, port, database, version = handle.rows(_MYSQL)[0]
        server = "%s:%s" % (host, port)
        if "mariadb" not in str(version).lower():
            # MySQL 5.6+ has a UUID per server; MariaDB has none.
            server = str(handle.rows("SELECT @@server_uuid")[0][0])
        return "mysql:%s/%s" % (server, database)
    raise ValueError("no identity for a %s connection" % handle.dialect)


def legacy(url: str) -> str:
    """The identity earlier builds derived from the spelling (backend,
    host, port, database name): their logbook books are named by it."""
    parsed = _parse(url)
    if parsed.backend == "sqlite":
        return "sqlite://%s" % (os.path.realpath(parsed.database)
                                if parsed.database not in (None, "",
                                                           ":memory:")
                                else ":memory:")
    port = parsed.port or urls.DEFAULT_PORTS.get(parsed.backend) or ""
    return "%s://%s:%s/%s" % (parsed.backend, parsed.host or "localhost",
                              port, parsed.database or "")


def _parse(url: str) -> urls.Url:
    try:
        return urls.parse(url)
    except urls.UrlError as exc:
        raise exceptions.BadUrl(exc.url, exc.reason) from None
