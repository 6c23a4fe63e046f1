"""The local logbook file, read as ``status`` reads it: without TaskFlow.

The file is written by the real writer (``logbook.RunStore`` on the
SQLite backend) in the test process; reading happens in a fresh
interpreter, which must not import TaskFlow (or SQLAlchemy) to do it.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from taskflow.persistence import models

from mistral_db_flows import logbook
from mistral_db_flows import states
from mistral_db_flows.logbook import records
from mistral_db_flows.logbook import sqlite_backend

IDENTITY = "sqlite:///srv/mistral.sqlite"


def _record(path: str, *runs: tuple[str, float, dict]) -> list[str]:
    """Record runs (state value, started, {step: atom state}); their
    uuids in order."""
    store = logbook.RunStore(path, IDENTITY).open()
    uuids = []
    try:
        for state, started, atoms in runs:
            fd = store.start("upgrade", {"tasks": list(atoms)},
                             plan={"target": "045"})
            for name, atom_state in atoms.items():
                ad = models.TaskDetail(name, uuid="%s-%s" % (fd.uuid, name))
                ad.state = atom_state
                fd.add(ad)
            fd.meta = dict(fd.meta, started=started)
            fd.meta[records.STATE] = state  # as any build may have
            store.backend.get_connection().update_flow_details(fd)
            uuids.append(fd.uuid)
    finally:
        store.close()
    return uuids


def _peek(path: str, identity: str = IDENTITY) -> tuple[dict, list]:
    """peek_interrupted in a fresh interpreter, and what it imported."""
    code = (
        "import json, sys\n"
        "from mistral_db_flows import logbook\n"
        "from mistral_db_flows.logbook import records\n"
        "meta = records.peek_interrupted(sys.argv[1],\n"
        "                                logbook.book_uuid(sys.argv[2]))\n"
        "heavy = sorted(m for m in ('taskflow', 'sqlalchemy', 'alembic')\n"
        "               if m in sys.modules)\n"
        "print(json.dumps([meta, heavy]))\n")
    done = subprocess.run([sys.executable, "-c", code, path, identity],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    meta, heavy = json.loads(done.stdout)
    return meta, heavy


def test_the_newest_resumable_run_is_read_without_taskflow(tmp_path):
    """Of ended, running, stopped, abandoned, resumed and unknown runs,
    the newest running or stopped one comes back with its steps."""
    path = str(tmp_path / "logbook.sqlite")
    _record(path,
            ("finished", 1.0, {"backup": "SUCCESS"}),
            ("running", 2.0, {"backup": "SUCCESS", "migrate_001": "RUNNING"}),
            ("stopped", 3.0, {"backup": "REVERTED", "migrate_001": "FAILURE"}),
            ("abandoned", 4.0, {"backup": "SUCCESS"}),
            ("resumed", 5.0, {"backup": "SUCCESS"}),
            ("from-a-newer-build", 6.0, {"backup": "RUNNING"}))
    meta, heavy = _peek(path)
    assert heavy == []
    assert (meta["mdf_state"], meta["started"], meta["operation"]) == (
        "stopped", 3.0, "upgrade")
    assert meta["atoms"] == {"backup": "REVERTED", "migrate_001": "FAILURE"}
    assert meta["plan"] == {"target": "045"}


def test_peek_finds_what_the_store_finds(tmp_path):
    """The TaskFlow-free reader and the store agree on the run."""
    path = str(tmp_path / "logbook.sqlite")
    uuids = _record(path, ("running", 1.0, {"backup": "SUCCESS"}),
                    ("running", 2.0, {"backup": "RUNNING"}),
                    ("finished", 3.0, {"backup": "SUCCESS"}))
    store = logbook.RunStore(path, IDENTITY).open()
    try:
        found = store.interrupted()
    finally:
        store.close()
    meta, _ = _peek(path)
    assert found.uuid == uuids[1]
    assert meta["atoms"] == {ad.name: ad.state for ad in found}
    assert meta["results"] == {ad.name: ad.results for ad in found}
    assert meta == dict(found.meta, atoms=meta["atoms"],
                        results=meta["results"])


def test_no_file_no_book_no_table_means_no_interrupted_run(tmp_path):
    """Nothing recorded yet is not an error: there is nothing to resume
    (and looking creates no file)."""
    path = str(tmp_path / "logbook.sqlite")
    assert _peek(path) == (None, [])
    assert not (tmp_path / "logbook.sqlite").exists()
    _record(path, ("running", 1.0, {"backup": "RUNNING"}))
    assert _peek(path, "sqlite:///another.sqlite") == (None, [])
    other = str(tmp_path / "other.sqlite")
    records.open_file(other).close()
    assert _peek(other) == (None, [])


def test_the_backend_writes_where_taskflow_and_the_reader_look(tmp_path):
    """The backend's paths are the reader's; they are also TaskFlow's
    own layout, so files written by earlier builds (on TaskFlow's
    paths) read the same."""
    backend = sqlite_backend.SqliteLogbookBackend(
        {"filename": str(tmp_path / "logbook.sqlite")})
    try:
        conn = backend.get_connection()
        assert (conn.book_path, conn.flow_path, conn.atom_path) == (
            records.BOOKS, records.FLOW_DETAILS, records.ATOM_DETAILS)
        # TaskFlow's PathBasedConnection computes its layout here.
        assert (conn._book_path, conn._flow_path, conn._atom_path) == (
            records.BOOKS, records.FLOW_DETAILS, records.ATOM_DETAILS)
        conn.upgrade()
        conn.save_logbook(models.LogBook("db", uuid="book-1"))
        assert records.children(backend.db, records.BOOKS) == ["book-1"]
    finally:
        backend.close()


def test_states_are_stored_as_plain_strings(tmp_path):
    """set_state writes the state's value: the file holds the same JSON
    as before the states were an Enum."""
    path = str(tmp_path / "logbook.sqlite")
    store = logbook.RunStore(path, IDENTITY).open()
    try:
        fd = store.start("upgrade", {"tasks": []})
        store.set_state(fd, states.RunState.STOPPED, backup={"path": "b"})
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        [(value,)] = conn.execute(
            "SELECT value FROM %s WHERE path = ?" % records.TABLE,
            ("%s/%s" % (records.FLOW_DETAILS, fd.uuid),))
    finally:
        conn.close()
    assert '"mdf_state": "stopped"' in value
    assert type(json.loads(value)["meta"]["mdf_state"]) is str


def test_a_book_that_cannot_be_read_is_not_replaced(tmp_path):
    """Only a missing book (TaskFlow's NotFound) is created on open; a
    record that cannot be read is an error, and stays as it was."""
    path = str(tmp_path / "logbook.sqlite")
    _record(path, ("running", 1.0, {"backup": "RUNNING"}))
    book = "%s/%s" % (records.BOOKS, logbook.book_uuid(IDENTITY))
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE %s SET value = '{not json' WHERE path = ?"
                     % records.TABLE, (book,))
    conn.close()
    with pytest.raises(ValueError):
        logbook.RunStore(path, IDENTITY).open()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT value FROM %s WHERE path = ?"
                            % records.TABLE, (book,)).fetchone() == (
            "{not json",)
    finally:
        conn.close()
