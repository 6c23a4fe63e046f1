"""Offline (--sql) scripts are complete and equal the online upgrade.

The script is produced with no connection to any database and fed to the
backend's own client (psql, mariadb) on an empty database.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess

import pytest
import sqlalchemy as sa

from mistral_db_flows import migration
from tests import migrate_util
from tests import reference

SERVERS = [pytest.param("postgresql", marks=pytest.mark.postgresql,
                        id="postgresql"),
           pytest.param("mysql", marks=pytest.mark.mysql, id="mysql")]

# Bound parameters Alembic would leave in a script instead of literals.
UNBOUND = re.compile(r"%\(\w+\)s|(?<![:\w]):[a-z_]\w*\b(?!:)")


def _script(url: str, target: str) -> str:
    out = io.StringIO()
    migration.upgrade(url, target, sql=True, output=out)
    return out.getvalue()


def _apply_with_client(url: str, script: str) -> None:
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "postgresql":
        cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
               "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
               "-U", u.username or "postgres", u.database]
    else:
        client = shutil.which("mariadb") or "mysql"
        cmd = [client, "-h", u.host or "127.0.0.1",
               "-P", str(u.port or 3306), "-u", u.username or "root",
               u.database]
    proc = subprocess.run(cmd, input=script, text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _unreachable_url(backend: str, database: str) -> str:
    # Offline mode must not connect: point at a port nothing listens on.
    driver = "postgresql+psycopg2" if backend == "postgresql" \
        else "mysql+pymysql"
    return "%s://nobody@127.0.0.1:1/%s" % (driver, database)


@pytest.mark.parametrize("backend", SERVERS)
def test_head_script_needs_no_database_and_has_no_bound_parameters(backend):
    """upgrade head --sql works with no server and renders literals."""
    script = _script(_unreachable_url(backend, "x"), "head")
    assert "INSERT INTO alembic_version" in script
    assert "'%s'" % reference.HEAD in script
    body = re.sub(r"'(?:[^']|'')*'", "''", script)  # ignore literals
    body = re.sub(r"--[^\n]*", "", body)
    assert not UNBOUND.findall(body)


@pytest.mark.parametrize("backend", SERVERS)
def test_head_script_applied_by_client_equals_online_schema(backend,
                                                            make_db):
    """Feeding the head script to psql/mariadb gives the reference head."""
    url = make_db(backend)
    database = sa.engine.make_url(url).database
    script = _script(_unreachable_url(backend, database), "head")
    _apply_with_client(url, script)
    assert migrate_util.version(url) == reference.HEAD
    assert migrate_util.schema_diff(url, reference.HEAD) == []


@pytest.mark.slow
@pytest.mark.parametrize("backend", SERVERS)
@pytest.mark.parametrize("start,end", [("001", "010"), ("010", "020"),
                                       ("020", "030"), ("030", "045"),
                                       ("044", "045")])
def test_range_script_moves_start_to_end(backend, start, end, make_db):
    """start:end --sql applied to a database at start reaches end."""
    url = make_db(backend)
    migration.upgrade(url, start)
    database = sa.engine.make_url(url).database
    _apply_with_client(url, _script(_unreachable_url(backend, database),
                                    "%s:%s" % (start, end)))
    assert migrate_util.version(url) == end
    assert migrate_util.schema_diff(url, end) == []
