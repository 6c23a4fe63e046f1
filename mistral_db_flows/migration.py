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

import contextlib
import functools
import io
import threading
from typing import Any, TextIO

from mistral_db_flows import exceptions
from mistral_db_flows import revisions
from mistral_db_flows import urls


# -- SQLAlchemy engines ----------------------------------------------------

def _parsed(url: str) -> urls.Url:
    """``url`` read; BadUrl when it cannot be (``dbapi.parse`` for
    everyone else: dbapi builds on this module, not the other way)."""
    try:
        return urls.parse(url)
    except urls.UrlError as exc:
        raise exceptions.BadUrl(exc.url, exc.reason) from None


def engine(url: str, **kwargs: Any) -> Any:
    """A SQLAlchemy engine (no pool unless ``kwargs`` give one); bad
    URLs raise BadUrl."""
    import sqlalchemy as sa

    kwargs.setdefault("poolclass", sa.pool.NullPool)
    parsed = _parsed(url).with_installed_driver()
    try:
        return sa.create_engine(parsed.to_sqlalchemy(), **kwargs)
    except sa.exc.NoSuchModuleError as exc:
        raise exceptions.BadUrl(parsed.render(),
                                "unknown database dialect or driver (%s)"
                                % exc) from None
    except ImportError as exc:
        # The URL is fine: the operator needs to install a package.
        raise exceptions.DriverMissing(
            *urls.missing_driver(parsed, exc.name)) from None
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise exceptions.BadUrl(parsed.render(),
                                urls.first_line(exc, url)) from None


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
            urls.masked(url), urls.first_line(exc.orig, url)) from None


# -- Alembic ---------------------------------------------------------------

def make_config(url: str | None = None, *, connection: Any = None,
                output: TextIO | None = None,
                target_metadata: Any = None):
    from alembic import config as alembic_config

    # Offline SQL goes to output_buffer; messages to stdout.
    cfg = alembic_config.Config(output_buffer=output,
                                stdout=output or io.StringIO())
    cfg.set_main_option("script_location", revisions.script_location())
    cfg.attributes["url"] = None
    if url is not None:
        # A URL object, not text: SQLAlchemy would read the text again,
        # its own way (see urls).
        cfg.attributes["url"] = \
            _parsed(url).with_installed_driver().to_sqlalchemy()
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


# Alembic's ``op`` and ``context`` proxies are process-global: two
# threads running env.py (or applying operations) at once would send one
# database's statements to the other's connection. Every such use holds
# this lock; re-entrant, since a revert may run inside a run's block.
_ALEMBIC_LOCK = threading.RLock()


@contextlib.contextmanager
def serialised():
    """Hold the process-wide Alembic lock for the block (every use of
    Alembic's ``op``/``context`` proxies: upgrade, stamp, offline SQL,
    a step's revert)."""
    with _ALEMBIC_LOCK:
        yield


def _run_env(cfg, fn, *, sql: bool, starting_rev: str | None,
             destination: Any) -> None:
    from alembic.runtime import environment
    from alembic.util import exc as alembic_exc

    script = script_directory()
    try:
        with serialised(), environment.EnvironmentContext(
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
            check_existing: bool = True, journal: Any = None) -> None:
    """Upgrade to ``target`` (``head``, an id, or ``start:end`` offline).

    Like ``alembic upgrade``, but on the cached script directory.
    ``check_existing=False`` skips the revisions' look at the live schema
    (see ``ddl.checking``): only for a first attempt that is retried
    with the checks when it fails. With ``journal`` (a
    ``revert.journal.Journal``) every operation records its inverse.
    """
    starting_rev = None
    if ":" in target:
        if not sql:
            raise exceptions.BadTarget(target, "a range needs --sql")
        starting_rev, target = target.split(":", 1)
    cfg = make_config(url, connection=connection, output=output)
    cfg.attributes["check_existing"] = check_existing
    if journal is not None:
        cfg.attributes["revert_journal"] = journal
    _run_env(cfg, lambda script, rev: script._upgrade_revs(target, rev),
             sql=sql, starting_rev=starting_rev or None,
             destination=target)


def plan_revert(url: str, revision: str, parent: str | None) -> Any:
    """How to undo ``revision`` without the database: its ``upgrade()``
    run offline for ``url``'s dialect, each operation telling a
    ``revert.plan.Planner`` (returned) instead of a journal."""
    from mistral_db_flows.revert import plan

    planner = plan.Planner(revision)
    if _parsed(url).backend == "sqlite":
        # SQLite's batch mode cannot run offline (it reflects the
        # table); its revisions take PostgreSQL's names and paths
        # (``ddl.name``), so PostgreSQL's plan is SQLite's.
        url = "postgresql://planning/none"
    cfg = make_config(url, output=io.StringIO())
    cfg.attributes["revert_plan"] = planner
    _run_env(cfg, lambda script, rev: script._upgrade_revs(revision, rev),
             sql=True, starting_rev=parent, destination=revision)
    return planner


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
            "revision: %s" % urls.first_line(exc, url)) from None
    finally:
        clear_caches()
    if isinstance(script, list):  # only with multiple heads (refused)
        script = script[0]
    if script is None:
        raise exceptions.MistralDbError("alembic wrote no revision file")
    return script.path
