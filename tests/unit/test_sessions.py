"""Our sessions and the others', without a server: what a session's
facts look like, and that a tracked SQLite connection's statement is
cancelled from another thread."""
from __future__ import annotations

import datetime
import sqlite3
import threading

import pytest

from mistral_db_flows import exceptions
from mistral_db_flows import sessions


def test_describe_drops_the_client_port_and_words_the_session():
    since = datetime.datetime(2026, 12, 6, 4, 0, 1, 123)
    session = sessions.describe(17, "", "10.0.0.5:46066", "mistral", since)
    assert session == {"pid": 17, "application": None,
                       "client": "10.0.0.5", "user": "mistral",
                       "since": "2026-12-06T04:00:01"}
    assert exceptions.describe_session(session) == \
        "pid 17 (10.0.0.5, 2026-12-06T04:00:01)"


def test_cancel_statements_interrupts_a_tracked_sqlite_query():
    """A long statement on a tracked connection is stopped from another
    thread; an untracked one is left alone."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
               "SELECT i + 1 FROM n) SELECT count(*) FROM n")
    sessions.track(conn, "sqlite://", "sqlite")
    try:
        timer = threading.Timer(0.3, sessions.cancel_statements)
        timer.start()
        with pytest.raises(sqlite3.OperationalError, match="interrupt"):
            conn.execute(endless).fetchall()
        timer.join()
    finally:
        sessions.untrack(conn)
    conn.close()
