"""The one module that talks to Alembic.

Everything else asks this module for revisions, the current revision of a
database, or to move a database to exactly one revision.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import os
from typing import Any, TextIO

MIGRATIONS_PACKAGE = "mistral_db_flows.migrations"


def script_location() -> str:
    """The folder holding env.py and versions/ (source tree or install)."""
    spec = importlib.util.find_spec(MIGRATIONS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the migrations package is not installed")
    return os.path.abspath(list(spec.submodule_search_locations)[0])


def make_config(url: str | None = None, *, connection: Any = None,
                output: TextIO | None = None,
                target_metadata: Any = None):
    from alembic import config as alembic_config

    # Offline SQL goes to output_buffer; messages to stdout.
    cfg = alembic_config.Config(output_buffer=output,
                                stdout=output or io.StringIO())
    cfg.set_main_option("script_location", script_location())
    cfg.attributes["url"] = url
    if connection is not None:
        cfg.attributes["connection"] = connection
    if target_metadata is not None:
        cfg.attributes["target_metadata"] = target_metadata
    return cfg


@functools.lru_cache(maxsize=None)
def script_directory():
    """Built once: building it imports every revision file."""
    from alembic import script

    return script.ScriptDirectory.from_config(make_config())


def heads() -> list[str]:
    return list(script_directory().get_heads())


def revisions() -> list[Any]:
    """All revisions, oldest first."""
    return list(reversed(list(script_directory().walk_revisions())))


def upgrade(url: str | None, target: str, *, sql: bool = False,
            output: TextIO | None = None, connection: Any = None) -> None:
    """Upgrade to ``target`` (``head``, an id, or ``start:end`` offline)."""
    from alembic import command

    cfg = make_config(url, connection=connection, output=output)
    command.upgrade(cfg, target, sql=sql)


def stamp(url: str | None, target: str, *, sql: bool = False,
          output: TextIO | None = None, connection: Any = None) -> None:
    from alembic import command

    cfg = make_config(url, connection=connection, output=output)
    command.stamp(cfg, target, sql=sql)


def current_revisions(connection: Any) -> list[str]:
    """The revision ids in ``alembic_version`` (empty when unversioned)."""
    from alembic.runtime import migration

    ctx = migration.MigrationContext.configure(connection)
    return list(ctx.get_current_heads())
