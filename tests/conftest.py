"""Fixtures shared by all tests.

Functional tests ask for ``db_url``; it is parametrised over SQLite,
PostgreSQL and MariaDB. A server that cannot be reached skips its tests
with the reason, except under CI (CI=true), where it fails them: CI must
prove all three backends.
"""
from __future__ import annotations

import os
from collections.abc import Collection

import pytest

from tests import dbs

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require(backend: str) -> None:
    try:
        dbs.check_available(backend)
    except dbs.Unavailable as exc:
        if IN_CI:
            pytest.fail("%s (CI must run every backend)" % exc)
        pytest.skip(str(exc))


def _marks(backend: str):
    return {"postgresql": [pytest.mark.postgresql],
            "mysql": [pytest.mark.mysql]}.get(backend, [])


def backend_params(quick: Collection[str] = dbs.BACKENDS) -> list:
    """Params for the ``backend`` fixture (``indirect=True``).

    Backends not in ``quick`` are marked slow: for a test whose property
    a cheaper quick test already checks on those servers, the quick
    subset keeps only the variants in ``quick``.
    """
    return [pytest.param(b, id=b, marks=_marks(b) + (
        [] if b in quick else [pytest.mark.slow])) for b in dbs.BACKENDS]


# The quick subset runs these on SQLite only; CI runs every backend.
SQLITE_QUICK = backend_params(["sqlite"])


@pytest.fixture(params=backend_params())
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
