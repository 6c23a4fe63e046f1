"""Fixtures shared by all tests.

Functional tests ask for ``db_url``; it is parametrised over SQLite,
PostgreSQL and MariaDB. A server that cannot be reached skips its tests
with the reason, except under CI (CI=true), where it fails them: CI must
prove all three backends.

The quick subset (``-m "not slow"``) runs every SQLite and unit test but
only the server tests marked ``smoke``: one rule, applied here at
collection, keeps it within issue 11's time budget however many server
tests are added. A test that uses PostgreSQL or MariaDB carries the
``postgresql`` / ``mysql`` mark (``backend_params`` adds it; a test that
asks ``make_db`` for a server without it fails, so none slips into the
quick subset unmarked); it is ``slow`` unless also marked ``smoke``. CI
runs all of them (``-m "slow or not slow"``).
"""
from __future__ import annotations

import os
from collections.abc import Collection

import pytest

from tests import dbs

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SERVERS = ("postgresql", "mysql")

# The test being set up or run in this process (the guard in _require).
_current: list = []


def uses_server(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(s) for s in SERVERS)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list) -> None:
    # tryfirst: the marks must be in place before "-m" deselects.
    for item in items:
        if uses_server(item) and not item.get_closest_marker("smoke"):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item: pytest.Item) -> None:
    _current[:] = [item]


def _require(backend: str) -> None:
    if backend in SERVERS and _current and \
            not _current[0].get_closest_marker(backend):
        pytest.fail("%s uses the %s server but is not marked "
                    "@pytest.mark.%s (tests/conftest.py: server tests are "
                    "slow unless marked smoke)"
                    % (_current[0].nodeid, backend, backend))
    try:
        dbs.check_available(backend)
    except dbs.Unavailable as exc:
        if IN_CI:
            pytest.fail("%s (CI must run every backend)" % exc)
        pytest.skip(str(exc))


def _marks(backend: str):
    return {"postgresql": [pytest.mark.postgresql],
            "mysql": [pytest.mark.mysql]}.get(backend, [])


def backend_params(quick: Collection[str] = ("sqlite",)) -> list:
    """Params for the ``backend`` fixture (``indirect=True``).

    Backends not in ``quick`` are marked slow; a server in ``quick`` is
    marked ``smoke``: the quick subset's check that this server works.
    """
    return [pytest.param(b, id=b, marks=_marks(b) + (
        ([pytest.mark.smoke] if b in SERVERS else []) if b in quick
        else [pytest.mark.slow])) for b in dbs.BACKENDS]


# The quick subset runs these on SQLite only; CI runs every backend.
SQLITE_QUICK = backend_params(["sqlite"])


def server_params(smoke: Collection[str] = ()) -> list:
    """Params for a test of the servers only: PostgreSQL and MariaDB,
    slow but those in ``smoke``."""
    return [p for p in backend_params(smoke) if p.values[0] in SERVERS]


@pytest.fixture(params=SQLITE_QUICK)
def backend(request) -> str:
    _require(request.param)
    return request.param


@pytest.fixture
def make_db(tmp_path):
    """Factory: ``make_db(backend)`` returns the URL of a fresh database."""
    created = []

    def factory(backend: str) -> str:
        _require(backend)
        url = dbs.create(backend, tmp_path)
        created.append(url)
        return url

    yield factory
    for url in created:
        dbs.drop(url)


@pytest.fixture
def db_url(backend, make_db) -> str:
    return make_db(backend)


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path, monkeypatch):
    """Logbooks and backups of a test stay in its own temp folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
