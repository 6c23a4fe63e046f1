"""The one module that talks to Alembic.

Moving a database (``upgrade``, ``stamp``, offline SQL) and writing a new
revision go through Alembic, with one ``ScriptDirectory`` per process
(building it imports every revision file). What does not need Alembic
lives elsewhere, so that ``current`` and ``status`` never import it: the
revision graph and the plans in :mod:`revisions`, the stamped revision
in :mod:`version_table`, a run's connection in :mod:`dbapi`. Engines
are made here (for Alembic, reflection, and URLs the bare drivers do
not take).

Private Alembic APIs used (each checked by the tests; ``alembic`` is
capped in setup.cfg below the first release not tested):

- ``ScriptDirectory._upgrade_revs(destination, current)`` and
  ``ScriptDirectory._stamp_revs(destination, current)``: the steps that
  ``alembic.command.upgrade`` and ``stamp`` give their
  ``EnvironmentContext``; called here on the cached script directory,
  since the commands build a new one (importing every revision) each
  time.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import re
from typing import Any, TextIO

from mistral_db_flows import exceptions
from mistral_db_flows import revisions


# -- URLs (moving to their own module) -------------------------------------

def hide_password(url: str) -> str:
    """The URL as it may appear in messages: password replaced by ***."""
    try:
        import sqlalchemy as sa

        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable: scrub whatever looks like one
        return re.sub(r"(://[^/?#@]*?:)[^/?#]*@", r"\1***@", url)


def scrub(message: str, url: str) -> str:
    """The first line of a driver message, minus any password in it."""
    line = (str(message).strip().splitlines() or ["unknown error"])[0]
    fast = parse_url(url)
    secrets = set()
    if fast and fast.get("password"):
        secrets.add(fast["password"])
    m = re.search(r"://[^/?#@]*?:([^/?#]*)@", url)
    if m and m.group(1):
        secrets.add(m.group(1))
    for secret in sorted(secrets, key=len, reverse=True):
        line = line.replace(secret, "***")
    return line


_URL = re.compile(r"^(?P<dialect>[A-Za-z0-9]+)(?:\+(?P<driver>\w+))?"
                  r"://(?P<rest>.*)$", re.S)
_NETLOC = re.compile(r"^(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
                     r"(?P<host>[^:@/\[\]]*)(?::(?P<port>\d+))?$")
_FAST_DRIVERS = {("sqlite", None), ("sqlite", "pysqlite"),
                 ("postgresql", None), ("postgresql", "psycopg2"),
                 ("mysql", "pymysql"), ("mariadb", "pymysql")}


def parse_url(url: str) -> dict | None:
    """Split a plain URL for the DB-API driver; None when unsure.

    Anything unusual (query options other than charset, IPv6 hosts,
    other drivers) goes to SQLAlchemy, which also reports bad URLs.
    """
    from urllib import parse

    m = _URL.match(url or "")
    if not m:
        return None
    dialect = m.group("dialect").lower()
    driver = m.group("driver")
    if (dialect, driver) not in _FAST_DRIVERS:
        return None
    rest = m.group("rest")
    if dialect == "sqlite":
        # "%XX" in a path: SQLAlchemy unquotes it, so it decides.
        if "?" in rest or "%" in rest or (rest and not rest.startswith("/")):
            return None
        return {"dialect": "sqlite", "database": rest[1:] or None}
    rest, _, query = rest.partition("?")
    options = parse.parse_qs(query, keep_blank_values=True)
    if set(options) - ({"charset"} if dialect != "postgresql" else set()):
        return None
    netloc, _, database = rest.partition("/")
    n = _NETLOC.match(netloc)
    if not n or "/" in database:
        return None

    def unquote(value: str | None) -> str | None:
        return parse.unquote(value) if value is not None else None

    return {"dialect": "mysql" if dialect == "mariadb" else dialect,
            "user": unquote(n.group("user")) or None,
            "password": unquote(n.group("password")),
            "host": n.group("host") or None,
            "port": int(n.group("port")) if n.group("port") else None,
            "database": unquote(database) or None,
            "charset": (options.get("charset") or [None])[0]}


# A URL without a driver means SQLAlchemy's default driver, which is not
# always installed (SQLAlchemy 2.1 moved PostgreSQL's to psycopg 3, while
# Mistral's configs were written for psycopg2): take the first installed.
_DRIVERS = {"postgresql": (("psycopg", "psycopg"), ("psycopg2", "psycopg2")),
            "mysql": (("MySQLdb", "mysqldb"), ("pymysql", "pymysql")),
            "mariadb": (("MySQLdb", "mysqldb"), ("pymysql", "pymysql"))}


def effective_url(url: str | None) -> str | None:
    """``url`` with an installed driver named when it names none."""
    m = _URL.match(url or "")
    if url is None or not m or m.group("driver"):
        return url
    dialect = m.group("dialect")
    choices = _DRIVERS.get(dialect.lower(), ())
    for module, driver in choices:
        if importlib.util.find_spec(module) is not None:
            return "%s+%s%s" % (dialect, driver, url[len(dialect):])
    return url


# -- SQLAlchemy engines ----------------------------------------------------

def engine(url: str, **kwargs: Any) -> Any:
    """A SQLAlchemy engine (no pool unless ``kwargs`` give one); bad
    URLs raise BadUrl."""
    import sqlalchemy as sa

    kwargs.setdefault("poolclass", sa.pool.NullPool)
    try:
        parsed = sa.engine.make_url(effective_url(url) or url)
        return sa.create_engine(parsed, **kwargs)
    except sa.exc.NoSuchModuleError as exc:
        raise exceptions.BadUrl(hide_password(url),
                                "unknown database dialect or driver (%s)"
                                % exc) from None
    except ImportError as exc:
        raise exceptions.BadUrl(hide_password(url),
                                "its driver is not installed (%s)"
                                % exc) from None
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise exceptions.BadUrl(hide_password(url),
                                scrub(str(exc), url)) from None


def check_url(url: str) -> None:
    """Raise BadUrl unless SQLAlchemy can build an engine for ``url``."""
    engine(url).dispose()


def connect(url: str, **kwargs: Any) -> Any:
    """A new SQLAlchemy connection (``kwargs`` for its engine); map
    connection errors to ours. A run borrows its own instead
    (``dbapi.sqlalchemy_connection``)."""
    import sqlalchemy as sa

    eng = engine(url, **kwargs)
    try:
        return eng.connect()
    except sa.exc.DBAPIError as exc:
        eng.dispose()
        raise exceptions.DatabaseUnreachable(
            hide_password(url), scrub(str(exc.orig), url)) from None


# -- Alembic ---------------------------------------------------------------

def make_config(url: str | None = None, *, connection: Any = None,
                output: TextIO | None = None,
                target_metadata: Any = None):
    from alembic import config as alembic_config

    # Offline SQL goes to output_buffer; messages to stdout.
    cfg = alembic_config.Config(output_buffer=output,
                                stdout=output or io.StringIO())
    cfg.set_main_option("script_location", revisions.script_location())
    cfg.attributes["url"] = effective_url(url)
    if connection is not None:
        cfg.attributes["connection"] = connection
    if target_metadata is not None:
        cfg.attributes["target_metadata"] = target_metadata
    return cfg


@functools.lru_cache(maxsize=None)
def _script_directory_for(location: str):
    from alembic import script

    cfg = make_config()
    cfg.set_main_option("script_location", location)
    return script.ScriptDirectory.from_config(cfg)


def script_directory():
    """Built once per process: building it imports every revision file."""
    return _script_directory_for(revisions.script_location())


def clear_caches() -> None:
    """Forget the script directory (after a new revision file)."""
    _script_directory_for.cache_clear()
    revisions.clear_cache()


def heads() -> list[str]:
    return list(script_directory().get_heads())


def scripts() -> list[Any]:
    """Alembic's Script of every revision, oldest first."""
    return list(reversed(list(script_directory().walk_revisions())))


def _run_env(cfg, fn, *, sql: bool, starting_rev: str | None,
             destination: Any) -> None:
    from alembic.runtime import environment
    from alembic.util import exc as alembic_exc

    script = script_directory()
    try:
        with environment.EnvironmentContext(
                cfg, script, fn=lambda rev, context: fn(script, rev),
                as_sql=sql, starting_rev=starting_rev,
                destination_rev=destination):
            script.run_env()
    except alembic_exc.CommandError as exc:
        if sql:
            # e.g. SQLite's batch mode, which must reflect the table.
            raise exceptions.BadTarget(
                destination, "this cannot be written as offline SQL: %s"
                % str(exc).split(". ")[0]) from exc
        raise exceptions.MistralDbError("alembic: %s" % exc) from exc


def upgrade(url: str | None, target: str, *, sql: bool = False,
            output: TextIO | None = None, connection: Any = None,
            check_existing: bool = True) -> None:
    """Upgrade to ``target`` (``head``, an id, or ``start:end`` offline).

    Like ``alembic upgrade``, but on the cached script directory.
    ``check_existing=False`` skips the revisions' look at the live schema
    (see ``ddl.checking``): only for a first attempt that is retried
    with the checks when it fails.
    """
    starting_rev = None
    if ":" in target:
        if not sql:
            raise exceptions.BadTarget(target, "a range needs --sql")
        starting_rev, target = target.split(":", 1)
    cfg = make_config(url, connection=connection, output=output)
    cfg.attributes["check_existing"] = check_existing
    _run_env(cfg, lambda script, rev: script._upgrade_revs(target, rev),
             sql=sql, starting_rev=starting_rev or None,
             destination=target)


def stamp(url: str | None, target: str, *, sql: bool = False,
          output: TextIO | None = None, connection: Any = None) -> None:
    """Set ``alembic_version`` to ``target`` (``base`` empties it)."""
    cfg = make_config(url, connection=connection, output=output)
    destination = () if target == "base" else (target,)
    _run_env(cfg, lambda script, rev: script._stamp_revs(destination, rev),
             sql=sql, starting_rev=None, destination=destination)


def new_revision(message: str, rev_id: str, *, autogenerate: bool = False,
                 url: str | None = None, target_metadata: Any = None
                 ) -> str:
    """Write a new revision file on top of the head; return its path."""
    from alembic import command
    from alembic.util import exc as alembic_exc

    cfg = make_config(url, target_metadata=target_metadata)
    try:
        script = command.revision(cfg, message=message,
                                  autogenerate=autogenerate, rev_id=rev_id)
    except alembic_exc.CommandError as exc:
        raise exceptions.MistralDbError(
            "revision: %s" % scrub(str(exc), url or "")) from None
    finally:
        clear_caches()
    if isinstance(script, list):  # only with multiple heads (refused)
        script = script[0]
    if script is None:
        raise exceptions.MistralDbError("alembic wrote no revision file")
    return script.path
