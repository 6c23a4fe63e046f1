"""Throw-away databases on the test servers.

Each database gets a unique name and is dropped afterwards; nothing else
on the servers is touched. Admin URLs can be overridden with
MDF_TEST_PG_URL and MDF_TEST_MYSQL_URL.
"""
from __future__ import annotations

import contextlib
import os
import uuid

import sqlalchemy as sa

BACKENDS = ("sqlite", "postgresql", "mysql")

PG_ADMIN_URL = os.environ.get(
    "MDF_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get(
    "MDF_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")

REFERENCE_DIALECT = {"postgresql": "pg", "mysql": "mysql", "sqlite": "pg"}


class Unavailable(Exception):
    """The backend's server cannot be reached."""


def _admin_engine(backend: str) -> sa.Engine:
    url = PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    return sa.create_engine(url, poolclass=sa.pool.NullPool,
                            isolation_level="AUTOCOMMIT")


def check_available(backend: str) -> None:
    if backend == "sqlite":
        return
    engine = _admin_engine(backend)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means "not reachable"
        raise Unavailable("%s server not reachable: %s"
                          % (backend, str(exc).splitlines()[0])) from exc
    finally:
        engine.dispose()


def create(backend: str, tmp_path) -> str:
    """Create an empty database and return its URL."""
    if backend == "sqlite":
        return "sqlite:///%s" % (tmp_path / ("mdf_%s.sqlite"
                                            % uuid.uuid4().hex[:8]))
    name = "mdf_test_%s" % uuid.uuid4().hex[:12]
    engine = _admin_engine(backend)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE %s" % name))
    finally:
        engine.dispose()
    base = sa.engine.make_url(
        PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL)
    return base.set(database=name).render_as_string(hide_password=False)


def drop(url: str) -> None:
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(u.database)
        return
    backend = "postgresql" if u.get_backend_name() == "postgresql" \
        else "mysql"
    if not (u.database or "").startswith("mdf_test_"):
        raise ValueError("refusing to drop %s: not a test database"
                         % u.database)
    engine = _admin_engine(backend)
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text("DROP DATABASE IF EXISTS %s WITH (FORCE)"
                                     % u.database))
            else:
                conn.execute(sa.text("DROP DATABASE IF EXISTS %s"
                                     % u.database))
    finally:
        engine.dispose()


def add_user(backend: str, database: str, *, password: str | None = None,
             owner: bool = False) -> str:
    """A new server user (with ``password``, if any) allowed into
    ``database`` (PostgreSQL: made its ``owner`` if asked); its name."""
    user = "mdf_user_%s" % uuid.uuid4().hex[:8]
    secret = "" if password is None else " %s '%s'" % (
        "PASSWORD" if backend == "postgresql" else "IDENTIFIED BY", password)
    engine = _admin_engine(backend)
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text("CREATE ROLE %s LOGIN%s"
                                     % (user, secret)))
                if owner:
                    conn.execute(sa.text("ALTER DATABASE %s OWNER TO %s"
                                         % (database, user)))
            else:
                conn.execute(sa.text("CREATE USER '%s'@'%%'%s"
                                     % (user, secret)))
                conn.execute(sa.text("GRANT ALL PRIVILEGES ON `%s`.* TO "
                                     "'%s'@'%%'" % (database, user)))
    finally:
        engine.dispose()
    return user


def drop_user(backend: str, user: str) -> None:
    """Drop a user of :func:`add_user` (a PostgreSQL owner only once its
    database is gone)."""
    engine = _admin_engine(backend)
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text("DROP ROLE IF EXISTS %s" % user))
            else:
                conn.execute(sa.text("DROP USER IF EXISTS '%s'@'%%'"
                                     % user))
    finally:
        engine.dispose()
