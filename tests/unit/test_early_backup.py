"""The backup task's head start: taken in a thread, collected by execute."""
from __future__ import annotations

import threading

import pytest

from mistral_db_flows.tasks import backup as backup_task


def test_result_waits_and_passes_the_latest_progress_on():
    release = threading.Event()

    def take(progress):
        progress(10, 100)
        progress(60, 100)
        release.wait(5)
        return {"path": "/backups/x"}

    early = backup_task._EarlyBackup(take)
    heard = []
    threading.Timer(0.7, release.set).start()
    assert early.result(lambda *p: heard.append(p)) == {"path": "/backups/x"}
    # Only the newest report of each half second, never a stale one.
    assert heard == [(60, 100)]


def test_an_error_in_the_thread_is_raised_by_result():
    def take(progress):
        raise OSError("disk full")

    early = backup_task._EarlyBackup(take)
    with pytest.raises(OSError, match="disk full"):
        early.result(lambda *p: None)


def test_execute_collects_the_early_backup_once(tmp_path, monkeypatch):
    db = tmp_path / "mistral.sqlite"
    db.write_bytes(b"")
    taken = []
    monkeypatch.setattr(backup_task.backup, "take",
                        lambda *a, **k: taken.append(k) or {"path": "b%d"
                                                             % len(taken)})
    task = backup_task.Backup("sqlite:///%s" % db, directory=str(tmp_path),
                              label="upgrade")
    task.start_early()
    assert task.execute() == {"path": "b1"}
    # A second execute (a retry) takes a new backup, not the old one.
    assert task.execute() == {"path": "b2"}
    assert len(taken) == 2


def test_no_head_start_without_a_file_or_when_disabled(tmp_path):
    missing = backup_task.Backup("sqlite:///%s" % (tmp_path / "none.db"),
                                 directory=str(tmp_path), label="upgrade")
    missing.start_early()
    assert missing._early is None
    off = backup_task.Backup("postgresql://x/y", directory=str(tmp_path),
                             label="upgrade", enabled=False)
    off.start_early()
    assert off._early is None
