"""A backend's driver that cannot be imported: what to install, not a bad
URL (issue 11.2). The import failure is simulated: a ``None`` entry in
``sys.modules`` makes ``import`` raise ImportError."""
from __future__ import annotations

import sys

import pytest

from mistral_db_flows import dbapi
from mistral_db_flows import exceptions
from mistral_db_flows import migration


@pytest.mark.parametrize("url, modules, text", [
    ("postgresql://u@127.0.0.1/db", ("psycopg2", "psycopg"),
     "the PostgreSQL driver psycopg2 is not installed: pip install "
     "'mistral-db-flows[postgresql]'"),
    ("mysql+pymysql://u@127.0.0.1/db", ("pymysql", "MySQLdb"),
     "the MySQL/MariaDB driver pymysql is not installed: pip install "
     "'mistral-db-flows[mysql]'"),
], ids=["postgresql", "mysql"])
def test_engine_and_connection_say_which_driver_to_install(
        monkeypatch, url, modules, text):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(exceptions.DriverMissing) as exc:
        migration.engine(url)
    assert str(exc.value) == text
    assert exc.value.exit_code == exceptions.ExitCode.USAGE
    assert "bad database URL" not in str(exc.value)
    # The direct path (no SQLAlchemy) falls back and says the same.
    with pytest.raises(exceptions.DriverMissing) as exc:
        dbapi.connect(url, private=True)
    assert str(exc.value) == text
