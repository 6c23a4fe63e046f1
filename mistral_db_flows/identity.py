"""Which database a URL reaches: one name for logbook, lock and backups."""
from __future__ import annotations

import os


def database_identity(url: str) -> str:
    """A stable name for the target database, without credentials."""
    from mistral_db_flows import migration

    # The light parser first: `status` must not import SQLAlchemy.
    parts = migration.parse_url(url)
    if parts is not None:
        backend, host, port = (parts["dialect"], parts.get("host"),
                               parts.get("port"))
        database = parts.get("database")
    else:
        import sqlalchemy as sa

        u = sa.engine.make_url(url)
        backend, host, port = u.get_backend_name(), u.host, u.port
        database = u.database
        if backend == "mariadb":
            backend = "mysql"
    if backend == "sqlite":
        path = database or ":memory:"
        if path != ":memory:":
            path = os.path.realpath(path)
        return "sqlite://%s" % path
    port = port or _DEFAULT_PORTS.get(backend, "")
    return "%s://%s:%s/%s" % (backend, host or "localhost", port,
                              database or "")


_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
