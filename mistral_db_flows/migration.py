"""The one module that talks to Alembic.

Everything else asks this module for revisions, the current revision of a
database, or to move a database to exactly one revision.

Two speeds: the revision graph (:func:`graph`) is read by a small parser
from the revision files and the stamped revision (:func:`read_version`)
with the bare DB-API driver, so that ``current`` and ``status`` never
import Alembic or SQLAlchemy; moving a database goes through Alembic,
with one ``ScriptDirectory`` per process (building it imports every
revision file).
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import io
import os
import re
from typing import Any, TextIO

from mistral_db_flows import exceptions
from mistral_db_flows import urls

MIGRATIONS_PACKAGE = "mistral_db_flows.migrations"


def script_location() -> str:
    """The folder holding env.py and versions/ (source tree or install)."""
    spec = importlib.util.find_spec(MIGRATIONS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the migrations package is not installed")
    return os.path.abspath(list(spec.submodule_search_locations)[0])


def versions_dir() -> str:
    return os.path.join(script_location(), "versions")


# -- the revision graph, without Alembic -----------------------------------

@dataclasses.dataclass(frozen=True)
class RevisionFile:
    """What a revision file declares; ``doc`` as Alembic reports it."""

    id: str
    down_revisions: tuple[str, ...]
    doc: str
    path: str

    @property
    def down_revision(self) -> str | list[str] | None:
        if not self.down_revisions:
            return None
        if len(self.down_revisions) == 1:
            return self.down_revisions[0]
        return list(self.down_revisions)


def parse_revision_file(path: str) -> RevisionFile | None:
    """Read ``revision``, ``down_revision`` and the doc; None if absent.

    ``doc`` is what Alembic's ``Script.doc`` gives: the stripped module
    docstring up to its first blank line. The file is parsed, not run.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if (isinstance(target, ast.Name)
                and target.id in ("revision", "down_revision")):
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
    rev = found.get("revision")
    if not isinstance(rev, str):
        return None
    down = found.get("down_revision")
    if down is None:
        downs: tuple[str, ...] = ()
    elif isinstance(down, str):
        downs = (down,)
    else:
        downs = tuple(down)
    doc = (ast.get_docstring(tree, clean=False) or "").strip()
    return RevisionFile(rev, downs, re.split("\n\n", doc)[0], path)


class Graph:
    """The revision graph: pure data, answers without touching a database.

    ``order`` lists ids oldest first (parents before children).
    """

    def __init__(self, files: list[RevisionFile]) -> None:
        self.revisions = {f.id: f for f in files}
        self.children: dict[str, list[str]] = {f.id: [] for f in files}
        self.missing: list[str] = []
        for f in files:
            for down in f.down_revisions:
                if down in self.children:
                    self.children[down].append(f.id)
                elif down not in self.missing:
                    self.missing.append(down)
        for kids in self.children.values():
            kids.sort()
        self.heads = sorted(r for r, kids in self.children.items()
                            if not kids)
        self.bases = sorted(f.id for f in files if not f.down_revisions)
        self.branch_points = sorted(r for r, kids in self.children.items()
                                    if len(kids) > 1)
        self.order = self._topological()

    def _topological(self) -> list[str]:
        done: list[str] = []
        seen: set[str] = set()
        for rev in sorted(self.revisions):
            stack = [rev]
            while stack:
                top = stack[-1]
                if top in seen:
                    stack.pop()
                    continue
                todo = [d for d in self.revisions[top].down_revisions
                        if d in self.revisions and d not in seen]
                if todo:
                    stack.extend(todo)
                    continue
                seen.add(top)
                done.append(top)
                stack.pop()
        return done

    def __contains__(self, rev: object) -> bool:
        return rev in self.revisions

    @property
    def sound(self) -> bool:
        """One base, one head, no branch, no dangling down_revision."""
        return (len(self.heads) == 1 and len(self.bases) == 1
                and not self.branch_points and not self.missing)

    def ancestors(self, rev: str | None) -> set[str]:
        """``rev`` and every revision below it (empty for None)."""
        out: set[str] = set()
        stack = [rev] if rev else []
        while stack:
            r = stack.pop()
            if r in out or r not in self.revisions:
                continue
            out.add(r)
            stack.extend(self.revisions[r].down_revisions)
        return out

    def between(self, start: str | None, end: str) -> list[str]:
        """Revisions to apply, oldest first, to go from start to end."""
        have = self.ancestors(start)
        want = self.ancestors(end)
        return [r for r in self.order if r in want and r not in have]


@functools.lru_cache(maxsize=8)
def _graph_for(location: str, stamp: tuple) -> Graph:
    folder = os.path.join(location, "versions")
    files = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py") and not name.startswith(("__init__", ".")):
            parsed = parse_revision_file(os.path.join(folder, name))
            if parsed is not None:
                files.append(parsed)
    return Graph(files)


def graph(location: str | None = None) -> Graph:
    """The revision graph of the migrations folder, cached per listing."""
    location = location or script_location()
    folder = os.path.join(location, "versions")
    listing = os.stat(folder)
    return _graph_for(location, (listing.st_mtime_ns, listing.st_size))


# -- the stamped revision, without SQLAlchemy ------------------------------

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
        rows = conn.execute("SELECT version_num FROM alembic_version")
        return [r[0] for r in rows]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        return None
    except sqlite3.DatabaseError as exc:
        raise exceptions.DatabaseUnreachable(urls.masked(url),
                                             str(exc)) from None
    finally:
        conn.close()


# Whether alembic_version exists, per backend (one row, one column).
VERSION_TABLE_EXISTS = {
    "postgresql": "SELECT to_regclass('alembic_version') IS NOT NULL",
    "mysql": "SELECT COUNT(*) FROM information_schema.tables WHERE "
             "table_schema = DATABASE() AND table_name = 'alembic_version'",
    "sqlite": "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
              "AND name = 'alembic_version'",
}


def _read_server(url: str) -> list[str] | None:
    """PostgreSQL or MySQL through psycopg2 / PyMySQL (None: no driver)."""
    from mistral_db_flows import dbapi

    handle = dbapi.open_server(url)
    if handle is None:
        return None
    try:
        if not handle.rows(VERSION_TABLE_EXISTS[handle.dialect])[0][0]:
            return []
        return [r[0] for r in handle.rows(
            "SELECT version_num FROM alembic_version")]
    finally:
        handle.close()


def engine(url: str):
    """A SQLAlchemy engine (no pool); bad URLs raise BadUrl."""
    import sqlalchemy as sa

    from mistral_db_flows import dbapi

    parsed = dbapi.parse(url).with_installed_driver()
    try:
        return sa.create_engine(parsed.to_sqlalchemy(),
                                poolclass=sa.pool.NullPool)
    except sa.exc.NoSuchModuleError as exc:
        raise exceptions.BadUrl(parsed.render(),
                                "unknown database dialect or driver (%s)"
                                % exc) from None
    except ImportError as exc:
        raise exceptions.BadUrl(parsed.render(),
                                "its driver is not installed (%s)"
                                % exc) from None
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise exceptions.BadUrl(parsed.render(),
                                urls.first_line(exc, url)) from None


def connect(url: str):
    """Open a SQLAlchemy connection; map connection errors to ours."""
    import sqlalchemy as sa

    eng = engine(url)
    try:
        return eng.connect()
    except sa.exc.DBAPIError as exc:
        eng.dispose()
        raise exceptions.DatabaseUnreachable(
            urls.masked(url), urls.first_line(exc.orig, url)) from None


# One open connection per database for the migrate steps of a run:
# opening one costs 5-25 ms, more than many revisions. A cache of
# connections, not of data: the API closes them when the run ends.
_SHARED: dict[str, Any] = {}


def shared_connection(url: str):
    """The run's connection to ``url`` (opened on first use)."""
    conn = _SHARED.get(url)
    if conn is None or conn.closed or conn.invalidated:
        conn = connect(url)
        _SHARED[url] = conn
    return conn


def discard_shared(url: str | None = None) -> None:
    """Close the shared connection(s); the next use opens a new one."""
    for key in [url] if url is not None else list(_SHARED):
        conn = _SHARED.pop(key, None)
        if conn is None:
            continue
        try:
            conn.close()
        finally:
            conn.engine.dispose()


def _read_sqlalchemy(url: str) -> list[str]:
    import sqlalchemy as sa

    conn = connect(url)
    try:
        if not sa.inspect(conn).has_table("alembic_version"):
            return []
        rows = conn.execute(sa.text("SELECT version_num FROM "
                                    "alembic_version"))
        return [r[0] for r in rows]
    except sa.exc.DBAPIError as exc:
        # e.g. a SQLite "database" that is some other file.
        raise exceptions.DatabaseUnreachable(
            urls.masked(url), urls.first_line(exc.orig, url)) from None
    finally:
        conn.close()
        conn.engine.dispose()


def read_version(url: str) -> list[str]:
    """The revision ids in ``alembic_version`` ([] when unversioned).

    Uses the bare driver when the URL is plain, SQLAlchemy otherwise.
    Raises BadUrl or DatabaseUnreachable.
    """
    from mistral_db_flows import dbapi

    parsed = dbapi.parse(url)
    direct = parsed.direct()
    found = None
    if direct is not None:
        if parsed.backend == "sqlite":
            found = _read_sqlite(parsed, url)
        else:
            found = _read_server(url)
    if found is None:
        found = _read_sqlalchemy(url)
    return sorted(found)


def check_url(url: str) -> None:
    """Raise BadUrl unless SQLAlchemy can build an engine for ``url``."""
    engine(url).dispose()


# -- Alembic ---------------------------------------------------------------

def make_config(url: str | None = None, *, connection: Any = None,
                output: TextIO | None = None,
                target_metadata: Any = None):
    from alembic import config as alembic_config

    # Offline SQL goes to output_buffer; messages to stdout.
    cfg = alembic_config.Config(output_buffer=output,
                                stdout=output or io.StringIO())
    cfg.set_main_option("script_location", script_location())
    cfg.attributes["url"] = None
    if url is not None:
        from mistral_db_flows import dbapi

        # A URL object, not text: SQLAlchemy would read the text again,
        # its own way (see urls).
        cfg.attributes["url"] = \
            dbapi.parse(url).with_installed_driver().to_sqlalchemy()
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
    return _script_directory_for(script_location())


def clear_caches() -> None:
    """Forget the script directory (after a new revision file)."""
    _script_directory_for.cache_clear()
    _graph_for.cache_clear()


def heads() -> list[str]:
    return list(script_directory().get_heads())


def revisions() -> list[Any]:
    """All revisions, oldest first."""
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


def current_revisions(connection: Any) -> list[str]:
    """The revision ids in ``alembic_version`` (empty when unversioned).

    Two plain queries on ``connection``: Alembic's MigrationContext
    costs several milliseconds to set up, and every migrate step reads
    the version twice.
    """
    name = connection.dialect.name
    exists = VERSION_TABLE_EXISTS.get("mysql" if name == "mariadb" else name)
    if exists is None:
        from alembic.runtime import migration

        ctx = migration.MigrationContext.configure(connection)
        return list(ctx.get_current_heads())
    if not connection.exec_driver_sql(exists).scalar():
        return []
    return sorted(r[0] for r in connection.exec_driver_sql(
        "SELECT version_num FROM alembic_version"))


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
