"""The local logbook (TaskFlow path-based records in one SQLite table)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest
from taskflow import states
from taskflow import task
from taskflow.persistence import models

from mistral_db_flows import logbook
from mistral_db_flows import states as mdf_states
from mistral_db_flows.logbook import records
from mistral_db_flows.logbook import sqlite_backend


def _backend(path):
    backend = sqlite_backend.SqliteLogbookBackend({"filename": str(path)})
    backend.get_connection().upgrade()
    return backend


def _run(name, *atoms):
    fd = models.FlowDetail(name, uuid=name + "-uuid")
    fd.meta = {"mdf_state": mdf_states.RunState.RUNNING, "started": 1.0}
    for atom, state in atoms:
        ad = models.TaskDetail(atom, uuid="%s-%s" % (name, atom))
        ad.state = state
        fd.add(ad)
    return fd


def test_runs_and_step_states_read_back_after_reopening(tmp_path):
    path = tmp_path / "logbook.sqlite"
    backend = _backend(path)
    book = models.LogBook("db", uuid="book")
    backend.get_connection().save_logbook(book)
    fd = _run("upgrade", ("backup", states.SUCCESS),
              ("migrate_001", states.RUNNING))
    book.add(fd)
    backend.get_connection().add_flow_details(book, fd)
    fd.find("upgrade-migrate_001").state = states.SUCCESS
    backend.get_connection().update_flow_details(fd)
    backend.close()

    again = _backend(path)
    loaded = again.get_connection().get_logbook("book")
    [run] = list(loaded)
    assert run.meta == fd.meta
    assert [(ad.name, ad.state) for ad in run] == [
        ("backup", states.SUCCESS), ("migrate_001", states.SUCCESS)]
    again.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_adding_a_run_leaves_the_other_runs_as_they_are(tmp_path):
    backend = _backend(tmp_path / "logbook.sqlite")
    conn = backend.get_connection()
    book = models.LogBook("db", uuid="book")
    first = _run("first", ("backup", states.SUCCESS))
    book.add(first)
    conn.add_flow_details(book, first)
    first.find("first-backup").state = states.FAILURE  # not saved
    second = _run("second", ("backup", states.PENDING))
    book.add(second)
    conn.add_flow_details(book, second)

    loaded = {fd.name: fd for fd in conn.get_logbook("book")}
    assert loaded["first"].find("first-backup").state == states.SUCCESS
    assert set(loaded) == {"first", "second"}
    backend.close()


def test_a_save_killed_half_way_leaves_the_previous_record(tmp_path):
    """Each save is one transaction: a writer killed inside it (after
    its first write) leaves the record as it was before the save."""
    path = tmp_path / "logbook.sqlite"
    backend = _backend(path)
    book = models.LogBook("db", uuid="book")
    fd = _run("upgrade", ("backup", states.SUCCESS),
              ("migrate_001", states.RUNNING))
    book.add(fd)
    backend.get_connection().add_flow_details(book, fd)
    backend.close()

    killer = textwrap.dedent("""
        import os, sys
        from mistral_db_flows.logbook import sqlite_backend
        backend = sqlite_backend.SqliteLogbookBackend({"filename": sys.argv[1]})
        conn = backend.get_connection()
        fd = conn.get_flow_details("upgrade-uuid")
        for ad in fd:
            ad.state = "FAILURE"
        real = conn._set_item
        def set_then_die(path, value, txn):
            real(path, value, txn)
            os._exit(9)
        conn._set_item = set_then_die
        conn.update_flow_details(fd)
    """)
    done = subprocess.run([sys.executable, "-c", killer, str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr

    again = _backend(path)
    run = again.get_connection().get_flow_details("upgrade-uuid")
    assert {ad.name: ad.state for ad in run} == {
        "backup": states.SUCCESS, "migrate_001": states.RUNNING}
    again.close()


def test_status_reads_the_interrupted_run_without_taskflow(tmp_path):
    path = tmp_path / "logbook.sqlite"
    identity = "sqlite:///somewhere/mistral.sqlite"
    backend = _backend(path)
    book = models.LogBook(identity, uuid=logbook.book_uuid(identity))
    ended = _run("ended", ("backup", states.SUCCESS))
    ended.meta = {"mdf_state": mdf_states.RunState.FINISHED, "started": 2.0}
    running = _run("running", ("backup", states.SUCCESS),
                   ("migrate_001", states.RUNNING))
    for fd in (ended, running):
        book.add(fd)
        backend.get_connection().add_flow_details(book, fd)
    backend.close()

    meta = records.peek_interrupted(str(path), logbook.book_uuid(identity))
    assert meta["mdf_state"] == mdf_states.RunState.RUNNING
    assert meta["atoms"] == {"backup": "SUCCESS", "migrate_001": "RUNNING"}
    assert records.peek_interrupted(
        str(path), logbook.book_uuid("another")) is None


def test_a_file_without_our_table_has_no_interrupted_run(tmp_path):
    path = tmp_path / "logbook.sqlite"
    records.open_file(str(path)).close()
    assert records.peek_interrupted(str(path),
                                    logbook.book_uuid("db")) is None


def test_a_store_reads_only_the_interrupted_run_whole(tmp_path):
    """Opening the logbook reads each run's record, not its steps; the
    interrupted run comes back with its steps."""
    path = str(tmp_path / "logbook.sqlite")
    store = logbook.RunStore(path, "db").open()
    try:
        for n in range(3):
            fd = store.start("upgrade", {"tasks": ["backup"]}, n=n)
            store.set_state(fd, mdf_states.RunState.FINISHED)
        running = store.start("upgrade", {"tasks": ["backup"]}, n=3)
        ad = models.TaskDetail("backup", uuid="backup-of-run-3")
        ad.state = states.RUNNING
        running.add(ad)
        store._backend.get_connection().update_flow_details(running)
    finally:
        store.close()

    store = logbook.RunStore(path, "db").open()
    try:
        assert len(list(store._book)) == 0  # nothing loaded up front
        assert [len(list(fd)) for fd in store.runs(lazy=True)] == [0] * 4
        found = store.interrupted()
        assert found.meta["n"] == 3
        assert [(a.name, a.state) for a in found] == [
            ("backup", states.RUNNING)]
    finally:
        store.close()


class _Step(task.Task):
    def execute(self):
        return {"ran": self.name}


@pytest.mark.parametrize("server", [
    pytest.param("postgresql", marks=[pytest.mark.postgresql]),
    pytest.param("mysql", marks=[pytest.mark.mysql])])
def test_a_shared_logbook_records_a_run_through_one_connection(server,
                                                               make_db):
    """logbook_connection: TaskFlow's SQL backend records every step of
    a run through one connection (TaskFlow's storage closes it after
    each save; only the backend ends it), and the next open finds the
    book, the run and its steps again."""
    from taskflow.patterns import linear_flow

    from mistral_db_flows import flows
    from mistral_db_flows.logbook import sql_backend

    url = make_db(server)
    store = logbook.RunStore(url, "db").open()
    try:
        conn = store.backend.get_connection()
        assert isinstance(conn, sql_backend.KeptConnection)
        fd = store.start("upgrade", {"tasks": ["one", "two"]})
        flow = linear_flow.Flow("f").add(_Step("one"), _Step("two"))
        outcome = flows.run(flow, flow_detail=fd, backend=store.backend)
        assert [(s.name, s.state) for s in outcome.steps] == [
            ("one", "done"), ("two", "done")]
        assert store.backend.get_connection() is conn
    finally:
        store.close()

    again = logbook.RunStore(url, "db").open()
    try:
        found = again.interrupted()  # never settled: still running
        assert found.uuid == fd.uuid
        assert found.meta["mdf_state"] == "running"
        assert {ad.name: (ad.state, ad.results) for ad in found} == {
            "one": (states.SUCCESS, {"ran": "one"}),
            "two": (states.SUCCESS, {"ran": "two"})}
        again.set_state(found, mdf_states.RunState.FINISHED)
        assert again.interrupted() is None
        assert [r.meta["mdf_state"] for r in again.runs(lazy=True)] == [
            "finished"]
    finally:
        again.close()


@pytest.mark.parametrize("kind", [
    "local", "sqlite-url",
    pytest.param("postgresql", marks=[pytest.mark.postgresql,
                                      pytest.mark.slow]),
    pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.slow])])
def test_prune_keeps_the_newest_ended_runs_and_every_resumable(
        kind, tmp_path, make_db):
    """runs_keep: only the newest N ended runs stay, with their steps;
    a run that can still be resumed stays whatever its age; another
    database's runs are not touched."""
    if kind == "local":
        url = str(tmp_path / "logbook.sqlite")
    elif kind == "sqlite-url":
        url = "sqlite:///%s" % (tmp_path / "shared.sqlite")
    else:
        url = make_db(kind)
    other = logbook.RunStore(url, "other-db").open()
    try:
        other.set_state(other.start("upgrade", {"tasks": []}),
                        mdf_states.RunState.FINISHED)
    finally:
        other.close()
    store = logbook.RunStore(url, "db").open()
    try:
        started = []
        for i in range(5):
            fd = store.start("upgrade", {"tasks": []})
            fd.meta["started"] = float(i)  # a clear order
            store.set_state(fd, mdf_states.RunState.STOPPED if i == 0
                            else mdf_states.RunState.FINISHED)
            started.append(fd.uuid)
        deleted = store.prune(2)
        assert sorted(deleted) == sorted(started[1:3])
        left = {fd.uuid for fd in store.runs(lazy=True)}
        assert left == {started[0], started[3], started[4]}
        assert store.prune(2) == []
    finally:
        store.close()
    other = logbook.RunStore(url, "other-db").open()
    try:
        assert len(other.runs(lazy=True)) == 1
    finally:
        other.close()


def test_runs_keep_prunes_when_a_run_ends(make_db, tmp_path):
    """[db_manage] runs_keep = 2: after four runs the logbook holds the
    two newest, the last one among them."""
    from mistral_db_flows import identity
    from tests.functional import safety_util as su

    url = make_db("sqlite")
    tool = su.Tool(url, tmp_path, runs_keep=2, backup=False)
    for target in ("002", "003", "004", "005"):
        done = tool.call("upgrade", target)
        assert done.code == 0, done
    store = logbook.RunStore(str(tool.state_dir / logbook.LOGBOOK_FILE),
                             identity.of_url(url)).open()
    try:
        runs = store.runs(lazy=True)
    finally:
        store.close()
    assert len(runs) == 2
    assert sorted(fd.meta["plan"]["target"] for fd in runs) == ["004",
                                                               "005"]
