"""Before a run changes anything it lists the other sessions connected
to the database (Mistral's services should be stopped), and with
``refuse_if_connected`` it refuses to start while there are any. Our
own sessions (the run's, its lock's) never count."""
from __future__ import annotations

import contextlib
from typing import Iterator

import pytest
import sqlalchemy as sa

from tests.functional import safety_util as su

BACKENDS = [
    pytest.param("postgresql", marks=[pytest.mark.postgresql]),
    pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.slow])]


@contextlib.contextmanager
def _connected(url: str, backend: str) -> Iterator[int]:
    """Another session on the database (an idle Mistral engine, say);
    yields its pid (MariaDB: connection id)."""
    args = ({"connect_args": {"application_name": "mistral-engine"}}
            if backend == "postgresql" else {})
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, **args)
    try:
        with engine.connect() as conn:
            yield conn.execute(sa.text(
                "SELECT pg_backend_pid()" if backend == "postgresql"
                else "SELECT CONNECTION_ID()")).scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_other_sessions_are_listed_and_ours_are_not(backend, make_db,
                                                     tmp_path):
    """One line says how many others are connected, one names each;
    with nobody else connected nothing is said."""
    url = make_db(backend)
    tool = su.Tool(url, tmp_path)
    with _connected(url, backend) as pid:
        done = tool.run("upgrade", "010")
    assert done.code == 0, done
    assert "sessions: 1 other session is connected" in done.err, done
    line = next(line for line in done.err.splitlines()
                if line.startswith("sessions: connected: "))
    assert "pid %d" % pid in line, line
    assert "127.0.0.1" in line, line
    if backend == "postgresql":
        assert "mistral-engine" in line, line
    alone = tool.run("upgrade", "head")
    assert alone.code == 0, alone
    assert "sessions:" not in alone.err, alone


@pytest.mark.parametrize("backend", BACKENDS)
def test_refuse_if_connected_changes_nothing(backend, make_db, tmp_path):
    """With refuse_if_connected, another session means exit 14 naming
    it, and the database is not touched."""
    url = make_db(backend)
    tool = su.Tool(url, tmp_path, refuse_if_connected=True)
    with _connected(url, backend) as pid:
        done = tool.run("upgrade", "head")
    assert done.code == 14, done
    assert done.doc["error"]["type"] == "OthersConnected"
    assert "pid %d" % pid in done.error_line()
    assert su.version(url) is None
    assert tool.run("upgrade", "head").code == 0
