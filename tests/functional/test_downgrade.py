"""``downgrade REV`` on real databases.

* The chained walk: a seeded database upgraded base -> head with
  ``--keep-revert-data``, then downgraded one revision at a time to
  base; after every step the schema equals upstream's reference of the
  revision below, and at every revision where rows were seeded on the
  way up, schema and every row are exactly as they were there.
* Without kept data: schema-only revisions go down, the first one that
  destroyed or rewrote data refuses (exit 15, named), nothing changed.
* A downgrade killed inside a step is finished by the same command; a
  failed one re-applies what it undid, kept data included.

SQLite runs in the quick subset; PostgreSQL and MariaDB are ``slow``.
"""
from __future__ import annotations

import warnings

import pytest
import sqlalchemy as sa

from tests import migrate_util
from tests import reference
from tests.functional import safety_util as su

EXIT_REVERT_DATA_MISSING = 15


@pytest.fixture(autouse=True)
def _fault_plugins():
    su.require_fault_plugins()


def _backends(quick: tuple = ("sqlite",)) -> list:
    out = []
    for backend in ("sqlite", "postgresql", "mysql"):
        marks = list(su.BACKEND_MARKS.get(backend, ()))
        if backend not in quick:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(backend, marks=marks, id=backend))
    return out


def _previous(rev: str) -> str | None:
    return None if rev == "001" else "%03d" % (int(rev) - 1)


def _revert_tables(url: str) -> list[str]:
    return [t for t, in migrate_util.rows(url, _TABLES[
        migrate_util.backend_of(url)]) if t.startswith("mdf_revert")]


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgresql": "SELECT tablename FROM pg_tables "
                  "WHERE schemaname = 'public'",
    "mysql": "SELECT table_name FROM information_schema.tables "
             "WHERE table_schema = DATABASE()",
}


def _reflected(conn: sa.Connection) -> list[sa.Table]:
    """Tables in dependency order (task and workflow executions refer
    to each other: SQLAlchemy warns and leaves that pair unordered)."""
    meta = sa.MetaData()
    meta.reflect(conn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        return list(meta.sorted_tables)


def _keys(url: str) -> dict[str, set[tuple]]:
    """Primary keys of every row, by table (Mistral's tables)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {t.name: {tuple(r) for r in conn.execute(
                        sa.select(*t.primary_key.columns))}
                    for t in _reflected(conn)
                    if t.primary_key.columns
                    and not t.name.startswith("mdf_")}
    finally:
        engine.dispose()


def _delete(url: str, keys: dict[str, set[tuple]]) -> None:
    """Delete those rows (foreign keys unchecked: some tables refer to
    themselves; every seeded row of a seeding goes)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    off = {"postgresql": "SET session_replication_role = replica",
           "mysql": "SET FOREIGN_KEY_CHECKS = 0"}.get(
               migrate_util.backend_of(url))
    try:
        with engine.begin() as conn:
            if off:
                conn.execute(sa.text(off))
            for table in reversed(_reflected(conn)):
                cols = list(table.primary_key.columns)
                for key in keys.get(table.name, ()):
                    conn.execute(table.delete().where(sa.and_(*[
                        c == v for c, v in zip(cols, key)])))
    finally:
        engine.dispose()


def _diff_at(url: str, rev: str | None) -> list[str]:
    if rev is None:
        # Base: nothing of Mistral's is left (alembic_version, empty).
        tables = set(su.state(url)["schema"]["tables"])
        return sorted(tables - {"alembic_version"})
    return migrate_util.schema_diff(url, rev)


@pytest.mark.parametrize("backend", _backends())
def test_kept_data_walks_down_to_base_one_revision_at_a_time(
        backend, make_db, tmp_path):
    """With kept revert data every revision goes down, to base: the
    schema is upstream's reference of k-1 after each step, and schema
    and rows equal what they were at each seeding point on the way
    up (rows rewritten or deleted by 020, 022, 029, 037, 038 back)."""
    url = make_db(backend)
    tool = su.Tool(url, tmp_path / "tool")
    seen, seeded = {}, {}
    for i, rev in enumerate(su.SEED_AT):
        done = tool.call("upgrade", rev, "--keep-revert-data")
        assert done.code == 0, done
        before = _keys(url)
        su.seed(url, "s%d" % i)
        seeded[rev] = {t: keys - before.get(t, set())
                       for t, keys in _keys(url).items()}
        seen[rev] = su.state(url)
    assert tool.call("upgrade", "head", "--keep-revert-data").code == 0
    status = tool.call("status")
    assert status.code == 0, status  # kept data is no upgrade to do
    kept = status.doc["revert_kept"]
    assert kept[0] == "045" and kept[-1] == "001", kept
    for rev in reversed(reference.REVISIONS):
        below = _previous(rev)
        done = tool.call("downgrade", "-1")
        assert done.code == 0, (rev, done.err)
        assert su.version(url) == below, rev
        assert _diff_at(url, below) == [], rev
        if below in seen:
            assert su.state_diff(su.state(url), seen[below]) == [], below
            # Rows seeded here were written after the seeding points
            # below: a downgrade keeps them, the comparisons there not.
            _delete(url, seeded[below])
    assert [t for t in su.state(url)["schema"]["tables"]
            if t != "alembic_version"] == []
    # Used up: nothing kept, no journal table left.
    assert tool.call("status").doc["revert_kept"] == []
    assert _revert_tables(url) == []
    assert migrate_util.rows(url, "SELECT COUNT(*) FROM alembic_version"
                             ) == [(0,)]


@pytest.mark.parametrize("backend", _backends())
def test_without_kept_data_refused_at_first_data_revision(
        backend, make_db, tmp_path):
    """No kept data: a downgrade over 043..039 (schema-only) and 038
    (deletes rows) is refused before anything changes, naming 038;
    down to 038 works, and schema and rows are as before the upgrade."""
    url = make_db(backend)
    su.prepare(url, "038")
    before = su.state(url)
    tool = su.Tool(url, tmp_path / "tool")
    assert tool.call("upgrade", "043").code == 0
    at_043 = su.state(url)
    refused = tool.call("downgrade", "030")
    assert refused.code == EXIT_REVERT_DATA_MISSING, refused
    line = refused.error_line()
    assert "revision 038 rewrites or deletes rows of delayed_calls_v2" \
        in line and "nothing was changed" in line, line
    assert refused.doc["error"]["type"] == "RevertDataMissing", refused.doc
    assert su.state_diff(su.state(url), at_043) == []
    done = tool.call("downgrade", "038")
    assert done.code == 0, done
    assert done.doc["state"] == "downgraded", done.doc
    assert [s["name"] for s in done.doc["steps"]] == [
        "check_branches", "downgrade_043", "downgrade_042",
        "downgrade_041", "downgrade_040", "downgrade_039"]
    assert su.state_diff(su.state(url), before) == []
    assert migrate_util.schema_diff(url, "038") == []


@pytest.mark.parametrize("backend", _backends())
def test_killed_downgrade_is_finished_by_the_same_command(backend, make_db,
                                                          tmp_path):
    """SIGKILL inside step 041's undo (its first statement sent): the
    run is interrupted, and the same command finishes at 040 with
    upstream's schema of 040 (043..041 are schema-only: no kept data
    needed)."""
    url = make_db(backend)
    su.prepare(url, "043")
    tool = su.Tool(url, tmp_path / "tool")
    killed = tool.run("downgrade", "040",
                      fault="inside:downgrade_041:kill")
    assert killed.code == -9, killed
    status = tool.run("status")
    assert status.doc["interrupted"]["operation"] == "downgrade", status
    again = tool.run("downgrade", "040")
    assert again.code == 0, again
    assert again.doc["resumed"] is True, again.doc
    assert su.version(url) == "040"
    assert migrate_util.schema_diff(url, "040") == []


def test_failed_downgrade_reapplies_what_it_undid(make_db, tmp_path):
    """A failure after step 040's undo: the run re-applies 040 .. 045,
    the database is back at 045 with upstream's schema, and the kept
    revert data is kept again (the next downgrade uses it). Then
    ``drop_revert_data`` drops what is kept: status no longer shows it,
    no revert table is left, and a downgrade over 042..041 still works
    (schema-only) while one over 038 is refused."""
    url = make_db("sqlite")
    tool = su.Tool(url, tmp_path / "tool")
    assert tool.call("upgrade", "head", "--keep-revert-data").code == 0
    failed = tool.call("downgrade", "030",
                       fault="after:downgrade_040:fail")
    assert failed.code == su.EXIT_STEP_FAILED, failed
    assert failed.run["state"] == "reverted", failed.run
    assert su.version(url) == "045"
    assert migrate_util.schema_diff(url, "045") == []
    assert "044" in tool.call("status").doc["revert_kept"]
    assert tool.call("downgrade", "043").code == 0
    assert migrate_util.schema_diff(url, "043") == []
    assert tool.call("verify").code != 0  # not at head: verify says so
    dropped = tool.call("drop_revert_data")
    assert dropped.code == 0 and "038" in dropped.doc["dropped"], dropped
    assert "044" not in dropped.doc["dropped"]  # used up by downgrade
    assert tool.call("status").doc["revert_kept"] == []
    assert _revert_tables(url) == []
    assert tool.call("downgrade", "041").code == 0
    refused = tool.call("downgrade", "037")
    assert refused.code == EXIT_REVERT_DATA_MISSING, refused
    assert su.version(url) == "041"


@pytest.mark.parametrize("backend", [
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=(pytest.mark.mysql, pytest.mark.slow))])
def test_sql_script_of_a_schema_only_range_moves_the_database(
        backend, make_db, tmp_path):
    """``downgrade 043:039 --sql`` connects to nothing, and the script,
    run by a client on a database at 043, leaves it at 039 with
    upstream's schema of 039 and the rows of 039's tables as before."""
    url = make_db(backend)
    su.prepare(url, "039")
    before = su.state(url)
    migrate_util.execute_raw(url, migrate_util.offline_statements(
        url, "039", "043"))
    tool = su.Tool(url, tmp_path / "tool")
    # Nothing connects: the same URL with a port nobody listens on.
    nowhere = sa.engine.make_url(url).set(port=1).render_as_string(
        hide_password=False)
    done = su.Tool(nowhere, tmp_path / "offline").call(
        "downgrade", "043:039", "--sql")
    assert done.code == 0, done
    script = done.doc["sql"]
    assert "UPDATE alembic_version SET version_num = '039'" in script
    assert "DROP TABLE code_sources" in script
    statements = []
    for chunk in script.split(";\n"):
        text = "\n".join(line for line in chunk.splitlines()
                         if not line.startswith("--")).strip()
        if text:
            statements.append(text)
    migrate_util.execute_raw(url, statements)
    assert su.version(url) == "039"
    assert migrate_util.schema_diff(url, "039") == []
    assert su.state_diff(su.state(url), before) == []
    assert tool.call("status").code == 10


def _schema_only(backend: str) -> list[str]:
    from mistral_db_flows import migration
    from mistral_db_flows.revert import parent_of

    url = {"sqlite": "sqlite:///x.db",
           "postgresql": "postgresql://planning/none",
           "mysql": "mysql+pymysql://planning/none"}[backend]
    return [rev for rev in reference.REVISIONS
            if migration.plan_revert(url, rev, parent_of(rev)).needs is None]


QUICK_PLANNED = {"013"}


def _planned_params() -> list:
    out = []
    for backend in ("sqlite", "postgresql", "mysql"):
        for rev in _schema_only(backend):
            marks = list(su.BACKEND_MARKS.get(backend, ()))
            if not (backend == "sqlite" and rev in QUICK_PLANNED):
                marks.append(pytest.mark.slow)
            out.append(pytest.param(backend, rev, marks=marks,
                                    id="%s-%s" % (backend, rev)))
    return out


@pytest.mark.parametrize("backend,rev", _planned_params())
def test_schema_only_revision_goes_down_without_kept_data(
        backend, rev, make_db, tmp_path):
    """Every schema-only revision k, upgraded without kept data, goes
    down to k-1 from its revert plan alone: upstream's schema of k-1,
    and the rows of the tables that stay are as they were at k-1."""
    url = make_db(backend)
    below = _previous(rev)
    if below is not None:
        su.prepare(url, below)
    before = su.row_checksums(url)
    from mistral_db_flows import migration

    migration.upgrade(url, rev)
    tool = su.Tool(url, tmp_path / "tool")
    done = tool.call("downgrade", below or "base")
    assert done.code == 0, done
    assert su.version(url) == below
    assert _diff_at(url, below) == []
    after = su.row_checksums(url)
    assert {t: v for t, v in after.items() if t in before} == before
