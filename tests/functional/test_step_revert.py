"""Every migrate step reverts itself (``[db_manage] backup = steps``).

For a revision k, on a database at k-1 seeded so that k has rows to
rewrite (the safety seeding leaves every nullable column NULL in one
row of every table: namespaces, keys, ...), a failure injected right
after step k's work must leave schema and every row exactly as before
(and equal to upstream's reference schema of k-1), with no dump taken
and no journal table left. A process killed inside k's revert leaves
the journal behind; the next run finishes the revert first.

SQLite runs three representative revisions in the quick subset (013
splits a table, 022 adds columns and rewrites values, 038 deletes rows);
every revision on every backend is ``slow``.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import dbs
from tests import migrate_util
from tests import reference
from tests.functional import safety_util as su

QUICK = {"013", "022", "038"}
REVISIONS = reference.REVISIONS[1:]  # 002..045: 001 starts from nothing


@pytest.fixture(autouse=True)
def _fault_plugins():
    su.require_fault_plugins()


def _params(quick_backends: tuple = ("sqlite",)) -> list:
    out = []
    for backend in dbs.BACKENDS:
        for rev in REVISIONS:
            marks = list(su.BACKEND_MARKS.get(backend, ()))
            if not (backend in quick_backends and rev in QUICK):
                marks.append(pytest.mark.slow)
            out.append(pytest.param(backend, rev, marks=marks,
                                    id="%s-%s" % (backend, rev)))
    return out


def _previous(rev: str) -> str:
    return "%03d" % (int(rev) - 1)


def _journal_tables(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [t for t in sa.inspect(conn).get_table_names()
                    if t.startswith("mdf_revert")]
    finally:
        engine.dispose()


def _prepared(backend: str, rev: str, make_db) -> tuple[str, dict]:
    url = make_db(backend)
    su.prepare(url, _previous(rev))
    return url, su.state(url)


@pytest.mark.parametrize("backend,rev", _params())
def test_failed_step_reverts_itself_exactly(backend, rev, make_db,
                                            tmp_path):
    """A failure right after step k's work: exit 7, the run says each
    step undid its change, no dump was taken, and the database is as
    before (upstream's schema of k-1, every row), journal gone."""
    url, before = _prepared(backend, rev, make_db)
    tool = su.Tool(url, tmp_path / "tool")
    done = tool.call("upgrade", rev, fault="after:migrate_%s:fail" % rev)
    assert done.code == su.EXIT_STEP_FAILED, done
    assert "undid its own change" in done.err, done.err
    assert not (tool.state_dir / "backups").exists() or not list(
        (tool.state_dir / "backups").iterdir())
    assert su.state_diff(su.state(url), before) == []
    assert migrate_util.schema_diff(url, _previous(rev)) == []
    assert _journal_tables(url) == []
    # And the same upgrade without the fault then works.
    assert tool.call("upgrade", rev).code == 0
    assert su.version(url) == rev
    assert _journal_tables(url) == []


@pytest.mark.parametrize("backend,rev", _params())
def test_revert_killed_is_finished_by_the_next_run(backend, rev, make_db,
                                                    tmp_path):
    """Killed at the start of step k's revert (its journal untouched):
    the next run of the same command finishes the revert, and the
    database is as before."""
    url, before = _prepared(backend, rev, make_db)
    tool = su.Tool(url, tmp_path / "tool")
    killed = tool.run("upgrade", rev, fault="after:migrate_%s:fail,"
                      "revert:migrate_%s:kill" % (rev, rev))
    assert killed.code == -9, killed
    if _journal_tables(url):  # (some revisions change nothing here)
        status = tool.run("status")
        assert status.doc["revert_pending"] == [rev], status.doc
    again = tool.run("upgrade", rev)
    assert again.code in (0, su.EXIT_STEP_FAILED), again
    if again.code == 0:
        # The revert was finished first, then the upgrade ran.
        assert su.version(url) == rev
    else:
        assert su.state_diff(su.state(url), before) == []
    assert _journal_tables(url) == []


# Revisions whose step has several inverses, with the count after which
# the kill strikes (newest inverse first: some undone, more to come).
MID_REPLAY = {"002": 3, "013": 5, "019": 2, "022": 3, "044": 2}
MID_REPLAY_QUICK = {"019", "022"}


def _mid_replay_params() -> list:
    return [pytest.param(backend, rev, marks=list(
        su.BACKEND_MARKS.get(backend, ())) + (
        [] if backend == "sqlite" and rev in MID_REPLAY_QUICK
        else [pytest.mark.slow]), id="%s-%s" % (backend, rev))
        for backend in dbs.BACKENDS for rev in sorted(MID_REPLAY)]


@pytest.mark.parametrize("backend,rev", _mid_replay_params())
def test_revert_killed_between_two_inverses_is_finished_by_the_next_run(
        backend, rev, make_db, tmp_path):
    """Killed in the middle of replaying step k's revert (after its n-th
    inverse, with more to come; on MariaDB and SQLite the ones applied
    are committed, on PostgreSQL rolled back): the same command resumes
    the revert, skips what is undone, undoes the rest, and the database
    equals upstream's reference of k-1 with every row, journal gone."""
    url, before = _prepared(backend, rev, make_db)
    tool = su.Tool(url, tmp_path / "tool")
    killed = tool.run("upgrade", rev, fault="after:migrate_%s:fail,"
                      "replaying:migrate_%s:kill:%d"
                      % (rev, rev, MID_REPLAY[rev]))
    assert killed.code == -9, killed
    assert any("replaying:migrate_%s:kill" % rev in line
               for line in tool.faults_fired()), tool.faults_fired()
    assert tool.run("status").doc["revert_pending"] == [rev]
    again = tool.run("upgrade", rev)
    assert again.code == su.EXIT_STEP_FAILED, again
    assert again.doc["error"]["run"]["state"] == "reverted", again.doc
    assert su.state_diff(su.state(url), before) == []
    assert migrate_util.schema_diff(url, _previous(rev)) == []
    assert _journal_tables(url) == []
    assert tool.run("upgrade", rev).code == 0


def test_another_command_finishes_a_revert_killed_between_inverses(
        make_db, tmp_path):
    """Killed after the 2nd of step 019's 4 inverses: ``upgrade head``
    (another target) finishes the revert first, then upgrades."""
    url, _before = _prepared("sqlite", "019", make_db)
    tool = su.Tool(url, tmp_path / "tool")
    killed = tool.run("upgrade", "019", fault="after:migrate_019:fail,"
                      "replaying:migrate_019:kill:2")
    assert killed.code == -9, killed
    done = tool.run("upgrade", "head")
    assert done.code == 0, done
    assert "steps 019 undone" in done.err and "back at 018" in done.err
    assert done.doc["start_revision"] == "018", done.doc
    assert migrate_util.schema_diff(url, "045") == []
    assert _journal_tables(url) == []


@pytest.mark.parametrize("backend", [
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=(pytest.mark.mysql, pytest.mark.slow))])
def test_row_another_session_commits_survives_a_failed_run(backend, make_db,
                                                           tmp_path):
    """A row another session commits while the run is under way (a
    forgotten engine, an operator's script) is still there after a
    later step fails: the revert touches only what the run changed
    (a restored dump would have deleted it)."""
    url = make_db(backend)
    su.prepare(url, "040")
    tool = su.Tool(url, tmp_path / "tool")
    with tool.sleeping("upgrade", "head",
                       fault="before:verify:sleep:3,before:verify:fail"
                       ) as proc:
        migrate_util.execute(
            url, "INSERT INTO workbooks_v2 (id, name, namespace) "
            "VALUES ('other-session', 'wb-other', 'ns')")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == su.EXIT_STEP_FAILED, err
    assert su.version(url) == "040"
    assert migrate_util.rows(
        url, "SELECT name, namespace FROM workbooks_v2 "
        "WHERE id = 'other-session'") == [("wb-other", "ns")]
    assert migrate_util.schema_diff(url, "040") == []


def test_another_command_finishes_a_killed_revert_first(make_db, tmp_path):
    """Killed inside step 029's revert, an ``upgrade 029`` run leaves
    the journal in the database: ``status`` shows the revert pending;
    ``upgrade head`` (another target, which would not resume that run)
    finishes the revert first, says so in one line, then upgrades."""
    url, before = _prepared("sqlite", "029", make_db)
    tool = su.Tool(url, tmp_path / "tool")
    killed = tool.run("upgrade", "029", fault="after:migrate_029:fail,"
                      "revert:migrate_029:kill")
    assert killed.code == -9, killed
    status = tool.run("status")
    assert status.code == 10, status
    assert status.doc["revert_pending"] == ["029"], status.doc
    done = tool.run("upgrade", "head")
    assert done.code == 0, done
    said = [line for line in done.err.splitlines()
            if "finished reverting the interrupted upgrade run" in line]
    assert len(said) == 1 and "steps 029 undone" in said[0], done.err
    assert "back at 028" in said[0]
    assert done.doc["start_revision"] == "028", done.doc
    assert su.version(url) == "045"
    assert _journal_tables(url) == []
    assert tool.run("status").code == 0


def test_backup_full_adds_the_dump(make_db, tmp_path):
    """--backup full: a dump is taken as well, the steps revert
    themselves and the dump is restored after them; the database is as
    before either way."""
    url, before = _prepared("sqlite", "038", make_db)
    tool = su.Tool(url, tmp_path / "tool")
    done = tool.call("upgrade", "038", "--backup", "full",
                     fault="after:migrate_038:fail")
    assert done.code == su.EXIT_STEP_FAILED, done
    assert "restored from the backup" in done.err
    assert done.run["backup"] and (tool.state_dir / "backups").exists()
    assert done.steps()["migrate_038"]["state"] == "failed"
    assert su.state_diff(su.state(url), before) == []
    assert _journal_tables(url) == []


def test_journal_tables_are_not_mistral_schema():
    """verify and the schema comparison skip the journal of an open
    run: never a foreign object, never a difference."""
    from mistral_db_flows import schema_dump

    assert schema_dump.ignored("mdf_revert_steps")
    assert schema_dump.ignored("mdf_revert_038_2")
    assert not schema_dump.ignored("workbooks_v2")


@pytest.mark.parametrize("backend", [
    "sqlite", pytest.param("postgresql", marks=(pytest.mark.postgresql,
                                                 pytest.mark.slow)),
    pytest.param("mysql", marks=(pytest.mark.mysql, pytest.mark.slow))])
def test_revert_killed_after_its_work_is_finished_by_the_next_run(
        backend, make_db, tmp_path):
    """Killed at the end of step 038's revert (its rows back, its
    journal gone, TaskFlow not told): the same command resumes the
    revert, finds nothing left to undo, and reports it reverted; the
    deleted rows are back once, not twice."""
    url, before = _prepared(backend, "038", make_db)
    tool = su.Tool(url, tmp_path / "tool")
    killed = tool.run("upgrade", "038", fault="after:migrate_038:fail,"
                      "reverted:migrate_038:kill")
    assert killed.code == -9, killed
    again = tool.run("upgrade", "038")
    assert again.code == su.EXIT_STEP_FAILED, again
    assert again.run["state"] == "reverted", again
    assert su.state_diff(su.state(url), before) == []
    assert _journal_tables(url) == []
    assert tool.run("upgrade", "038").code == 0


def test_abandon_drops_the_revert_journal(make_db, tmp_path):
    """``abandon`` forgets a run killed inside its revert together with
    its journal: the database stays as the kill left it and no later
    command undoes that run's steps."""
    url, _before = _prepared("sqlite", "029", make_db)
    tool = su.Tool(url, tmp_path / "tool")
    killed = tool.run("upgrade", "029", fault="after:migrate_029:fail,"
                      "revert:migrate_029:kill")
    assert killed.code == -9, killed
    assert _journal_tables(url)
    assert tool.run("abandon").code == 0
    assert _journal_tables(url) == []
    assert su.version(url) == "029"
    status = tool.run("status")
    assert status.doc["revert_pending"] == [], status.doc
    assert tool.run("upgrade", "head").code == 0


@pytest.mark.parametrize("backend", [
    "sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=pytest.mark.mysql)])
def test_nothing_to_keep_makes_no_data_copy(backend, make_db):
    """Rows a step would delete or rewrite are copied only when there
    are some: with none the journal entry says so (``copy`` None) and
    no side table is made (on MariaDB each costs tens of ms, and an
    empty database's upgrade made nine)."""
    from mistral_db_flows import migration
    from mistral_db_flows.revert import journal
    from mistral_db_flows.revert import record

    url = make_db(backend)
    conn = migration.connect(url)
    try:
        conn.exec_driver_sql("CREATE TABLE kept (id INTEGER PRIMARY KEY, "
                             "v VARCHAR(10))")
        conn.commit()
        steps = journal.Journal("999")
        record.drop_table(conn, steps, "kept")
        record.save_rows(conn, steps, "kept", ["id"], ["v"], "id = 1")
        conn.exec_driver_sql("INSERT INTO kept VALUES (1, 'a')")
        record.save_rows(conn, steps, "kept", ["id"], None, "id = 2")
        record.save_rows(conn, steps, "kept", ["id"], None, "id = 1")
        conn.commit()
        found = [inv for _seq, inv in journal.entries(conn, "999")]
        copies = [inv.get("copy") for inv in reversed(found)]
        assert copies[:3] == [None, None, None], found
        assert copies[3] and journal.side_tables(conn) == [copies[3]]
        assert migrate_util.rows(url, "SELECT id, v FROM %s"
                                 % copies[3]) == [(1, "a")]
        journal.discard(conn)
        conn.commit()
    finally:
        conn.close()
        conn.engine.dispose()


@pytest.mark.parametrize("backend,rev", [
    (backend, rev) if backend == "sqlite" else pytest.param(
        backend, rev, marks=su.BACKEND_MARKS[backend] + (pytest.mark.slow,))
    for backend in dbs.BACKENDS for rev in ("002", "038")])
def test_empty_database_step_reverts_without_copies(backend, rev, make_db,
                                                    tmp_path):
    """On an empty database, step 002 (drops four tables) and 038
    (deletes delayed calls) copy nothing; a failure right after either
    still leaves exactly upstream's schema of k-1, journal gone."""
    from mistral_db_flows import migration

    url = make_db(backend)
    migration.upgrade(url, _previous(rev))
    tool = su.Tool(url, tmp_path / "tool")
    done = tool.call("upgrade", rev, fault="after:migrate_%s:fail" % rev)
    assert done.code == su.EXIT_STEP_FAILED, done
    assert su.version(url) == _previous(rev)
    assert migrate_util.schema_diff(url, _previous(rev)) == []
    assert _journal_tables(url) == []
