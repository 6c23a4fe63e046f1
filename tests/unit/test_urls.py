"""Database URLs without a database: the one reading, its rendering with
the password hidden, masking in free text, and the identity earlier
builds read from a URL's spelling."""
from __future__ import annotations

import urllib.parse

import pytest
import sqlalchemy as sa

from mistral_db_flows import identity
from mistral_db_flows import urls
from mistral_db_flows.backup import common
from mistral_db_flows.backup import mysql
from mistral_db_flows.backup import postgresql
from tests import fresh

# URLs SQLAlchemy reads well: ours must read them to the same parts.
AS_SQLALCHEMY = (
    "postgresql://mistral:pw@db.example:6543/mistral",
    "postgresql+psycopg2://u%40x:p%2Fw%25%3A@h/d%20b",
    "postgresql://u:@h/db",
    "postgresql:///mistral",
    "postgresql://u:pw@/mistral",
    "mysql+pymysql://root@127.0.0.1:3306/mistral",
    "mysql+pymysql://u:p:q@h/m?charset=utf8mb4",
    "mariadb+pymysql://u:pw@h:3307/mistral",
    "sqlite:////var/lib/mistral/mistral.sqlite",
    "sqlite:///relative/mistral.db",
    "sqlite+pysqlite:////tmp/x.db",
    "postgresql://u:pw@h/db?sslmode=require",
    "postgresql://u:pw@[::1]:5432/db",
    "postgresql://@h/db",
    "postgresql://u:pw@h/",
    "mysql://u:pw@h/db",
    "mysql+pymysql://u:pw@h/db?unix_socket=/run/mysqld.sock",
    "postgresql://u@/db?host=/var/run/postgresql",
    "postgresql://u:a/b?c#d:e@h/db",
    "sqlite:////tmp/a%20b.db",
    "sqlite:///x.db?timeout=5",
    "sqlite:///file:x.db?mode=ro&uri=true",
    "sqlite://",
)


@pytest.mark.parametrize("text", AS_SQLALCHEMY)
def test_urls_read_as_sqlalchemy_reads_them(text):
    """Parts, rendering (password shown or hidden) and the SQLAlchemy
    URL are exactly SQLAlchemy's own reading of the text; the tools'
    credentials (libpq variables, MySQL option file) follow them."""
    parsed, full = urls.parse(text), sa.engine.make_url(text)
    for ours, theirs in (("drivername", "drivername"), ("user", "username"),
                         ("password", "password"), ("host", "host"),
                         ("port", "port"), ("database", "database")):
        assert getattr(parsed, ours) == getattr(full, theirs), ours
    assert parsed.options == {k: v[-1] if isinstance(v, tuple) else v
                              for k, v in full.query.items()}
    backend = full.get_backend_name()
    assert parsed.backend == ("mysql" if backend == "mariadb" else backend)
    assert parsed.to_sqlalchemy() == full
    assert parsed.render(hide_password=False) == \
        full.render_as_string(hide_password=False)
    assert str(parsed) == full.render_as_string()
    assert common.url_text(parsed) == text
    if parsed.backend == "postgresql":
        env = postgresql.environment(parsed)
        for var, value in (("PGUSER", full.username),
                           ("PGPASSWORD", full.password),
                           ("PGDATABASE", full.database),
                           ("PGPORT", full.port)):
            assert env.get(var) == (None if value is None else str(value))
        assert env.get("PGHOST") == (full.host or full.query.get("host"))
    if parsed.backend == "mysql":
        text_of_options = mysql.option_text(parsed)
        for key, value in (("user", full.username),
                           ("password", full.password),
                           ("host", full.host)):
            assert (value is None) != ('%s="%s"' % (key, value)
                                       in text_of_options), key


@pytest.mark.parametrize("password", (
    "p@ss", "p:ss", "p/ss", "p%ss", "p#ss", "p?ss", "s3cr@t/Pw-1",
    "a@b:c/d?e#f%g", "@", "%40", "e", "mistral",
))
@pytest.mark.parametrize("encode", (True, False))
def test_odd_passwords_are_read_whole_and_never_rendered(password, encode):
    """Whether written raw or percent-encoded, a password with @ : / %
    # ? is read whole (host, port and database stay theirs) and no
    rendering, repr or masking shows it."""
    written = urllib.parse.quote(password, safe="") if encode else password
    text = "postgresql+psycopg2://mistral:%s@db.example:6543/mistral" % (
        written)
    parsed = urls.parse(text)
    if encode or "%" not in password:
        assert parsed.password == password
    assert (parsed.host, parsed.port, parsed.database) == (
        "db.example", 6543, "mistral")
    shown = "postgresql+psycopg2://mistral:***@db.example:6543/mistral"
    assert str(parsed) == urls.masked(text) == shown
    assert repr(parsed) == repr(parsed.replace(password=None))
    masked = urls.mask_text("cannot connect to %s: refused" % text)
    assert masked == "cannot connect to %s: refused" % shown
    assert urls.parse(parsed.render(hide_password=False)) == parsed


def test_hosts_sockets_and_queries():
    """IPv6 hosts, Unix sockets and query options are read as
    SQLAlchemy reads them, and rendered back the same."""
    v6 = urls.parse("postgresql://u:pw@[fe80::1]:5433/db")
    assert (v6.host, v6.port) == ("fe80::1", 5433)
    assert str(v6) == "postgresql://u:***@[fe80::1]:5433/db"
    pg = urls.parse("postgresql://u@/db?host=/var/run/postgresql")
    assert pg.host is None and pg.options == {"host": "/var/run/postgresql"}
    assert pg.direct() == ("psycopg2", {"user": "u", "dbname": "db",
                                        "host": "/var/run/postgresql"})
    my = urls.parse("mariadb+pymysql://u:pw@/m?unix_socket=/run/x.sock"
                    "&charset=utf8")
    assert my.backend == "mysql" and my.dialect == "mariadb"
    assert my.direct() == ("pymysql", {
        "user": "u", "password": "pw", "database": "m",
        "unix_socket": "/run/x.sock", "charset": "utf8"})
    assert urls.parse("mysql+pymysql://u@h/m?ssl_ca=/x").direct() is None
    assert urls.parse("mysql://u@h/m").direct() is None
    assert urls.parse("postgresql+psycopg://u@h/m").direct() is None
    assert urls.parse("postgresql://u@h/m?host=a&host=b").direct() is None
    repeated = urls.parse("postgresql://u@h/m?a=1&a=2")
    assert repeated.options == {"a": "2"}
    assert repeated.to_sqlalchemy().query == {"a": ("1", "2")}


@pytest.mark.parametrize("text, path", (
    ("sqlite:////abs/m.sqlite", "/abs/m.sqlite"),
    ("sqlite:///rel/m.sqlite", "rel/m.sqlite"),
    ("sqlite:///a%20b.db", "a b.db"),
    ("sqlite:///file:/abs/u.db?mode=rw&uri=true", "/abs/u.db"),
    ("sqlite:///file:rel.db?uri=true", "rel.db"),
    ("sqlite:///file:lit.db", "file:lit.db"),  # no uri=true: a file name
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("sqlite:///file::memory:?uri=true&mode=memory", None),
    ("sqlite:///file:m?mode=memory&uri=true", None),
))
def test_sqlite_paths(text, path):
    """The file SQLite opens: relative, absolute, quoted, `file:` URIs
    (with uri=true, as SQLAlchemy passes them); None in memory."""
    assert urls.parse(text).sqlite_path == path


def test_scheme_case_does_not_matter():
    """SQLAlchemy would look for a dialect named ``SQLITE`` and fail;
    the one reading lowers the scheme, as the old fast path did."""
    parsed = urls.parse("SQLITE:////tmp/x.db")
    assert (parsed.backend, parsed.database) == ("sqlite", "/tmp/x.db")
    assert parsed.to_sqlalchemy().drivername == "sqlite"


def test_direct_sqlite_only_for_the_plain_driver():
    assert urls.parse("sqlite:////a.db").direct() == (
        "sqlite3", {"database": "/a.db"})
    assert urls.parse("sqlite://").direct() == (
        "sqlite3", {"database": ":memory:"})
    assert urls.parse("sqlite:////a.db?timeout=5").direct() is None


@pytest.mark.parametrize("text", (
    "not a url at all", "postgresql://u:pw@[::1]x/db",
    "postgresql://u:s3cret@h:port/db", "postgresql:/u:pw@h/db",
))
def test_unreadable_urls_are_refused_without_the_password(text):
    with pytest.raises(urls.UrlError) as err:
        urls.parse(text)
    assert "s3cret" not in str(err.value) and "pw@" not in str(err.value)
    assert err.value.reason


def test_a_url_value_never_shows_its_password():
    """repr and str hide it; the value is frozen."""
    parsed = urls.parse("postgresql://mistral:hunter2@h/db")
    assert parsed.password == "hunter2"
    assert "hunter2" not in repr(parsed) and "hunter2" not in str(parsed)
    with pytest.raises(AttributeError):
        parsed.password = "x"  # type: ignore[misc]


def test_with_installed_driver():
    """A URL without a driver names the first installed one."""
    plain = urls.parse("postgresql://u:pw@h/db")
    named = plain.with_installed_driver()
    assert named.driver in ("psycopg", "psycopg2")
    assert named.password == "pw" and urls.parse(named.text) == named
    explicit = urls.parse("postgresql+pg8000://u@h/db")
    assert explicit.with_installed_driver() is explicit


# -- masking in free text --------------------------------------------------

@pytest.mark.parametrize("password", ("mistral", "e", "SECRETPW123"))
def test_masking_touches_urls_only(password):
    """Text that merely contains the password's letters is left alone:
    only the password field of a URL (or a password= value) is."""
    url = "postgresql://mistral:%s@db/mistral" % password
    text = ("Rebuild mistral_metrics; see mistral-db-manage history; "
            "backup ~/.local/state/mistral-db-flows/e.sqlite")
    assert urls.mask_text(text, (url,)) == text
    assert urls.mask_text("at %s now" % url, (url,)) == \
        "at postgresql://mistral:***@db/mistral now"


def test_masking_of_connection_strings_and_known_urls():
    """libpq connection strings and option files spell the password
    key=value; a known URL is hidden whole even with white space in
    its password."""
    assert urls.mask_text("dsn: host=h password=a'b user=u") == \
        "dsn: host=h password=*** user=u"
    assert urls.mask_text("password = 'x y' port=1") == \
        "password = *** port=1"
    assert urls.mask_text("PGPASSWORD=abc") == "PGPASSWORD=***"
    url = "mysql+pymysql://root:two words@h/m"
    assert urls.mask_text("see %s." % url, (url,)) == \
        "see mysql+pymysql://root:***@h/m."
    assert urls.first_line("one %s\ntwo" % url, url) == \
        "one mysql+pymysql://root:***@h/m"


def test_parsing_and_masking_import_no_sqlalchemy():
    """Start-up (status, current, populate given a URL) reads and masks
    URLs without importing SQLAlchemy."""
    assert not fresh.imports_sqlalchemy(
        "from mistral_db_flows import urls, identity\n"
        "u = urls.parse('postgresql://u:p@h/d?host=/s')\n"
        "u.direct(); str(u); u.with_installed_driver()\n"
        "urls.mask_text('x mysql://u:p@h/d')\n"
        "identity.legacy('mysql+pymysql://u@h/m')")


# -- the identity earlier builds read from the spelling --------------------

@pytest.mark.parametrize("text, expected", (
    ("postgresql://mistral:pw@localhost/mistral",
     "postgresql://localhost:5432/mistral"),
    ("postgresql+psycopg2://u:p@localhost/mistral",
     "postgresql://localhost:5432/mistral"),
    ("postgresql+psycopg2://mistral:mistral@127.0.0.1:5432/DB",
     "postgresql://127.0.0.1:5432/DB"),
    ("postgresql://u@/db?host=/var/run/postgresql",
     "postgresql://localhost:5432/db"),
    ("postgresql://u:pw@[::1]:5433/db", "postgresql://::1:5433/db"),
    ("postgresql://u:pw@h/d%20b?sslmode=require", "postgresql://h:5432/d b"),
    ("mysql+pymysql://root@127.0.0.1:3306/mistral",
     "mysql://127.0.0.1:3306/mistral"),
    ("mariadb+pymysql://u:pw@h/m?charset=utf8mb4", "mysql://h:3306/m"),
    ("mysql://u:pw@db.example/m", "mysql://db.example:3306/m"),
    ("sqlite:///rel/m.sqlite", "sqlite:///tmp/rel/m.sqlite"),
    ("sqlite:////abs/m.sqlite", "sqlite:///abs/m.sqlite"),
    ("sqlite://", "sqlite://:memory:"),
    ("sqlite:///a%20b.db", "sqlite:///tmp/a b.db"),
))
def test_legacy_identity_is_what_earlier_builds_wrote(text, expected,
                                                      monkeypatch):
    """The strings the previous build's ``database_identity`` produced
    (its logbook books are named by them), byte for byte."""
    monkeypatch.chdir("/tmp")
    assert identity.legacy(text) == expected


def test_legacy_identity_ignores_credentials_but_not_place():
    """Two users of one database share it; two servers do not."""
    a = identity.legacy("postgresql://a:1@h:5432/mistral")
    b = identity.legacy("postgresql://b:2@h:5432/mistral")
    c = identity.legacy("postgresql://a:1@other:5432/mistral")
    assert a == b != c
    assert "1" not in a.replace("5432", "")
    assert identity.legacy("mariadb+pymysql://u@h/m") == \
        identity.legacy("mysql+pymysql://u@h/m")


def test_sqlite_identity_is_the_real_path(tmp_path, monkeypatch):
    """Relative, absolute and through a symlink: one identity."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    spellings = ("sqlite:///real/m.sqlite",
                 "sqlite:///%s/real/m.sqlite" % tmp_path,
                 "sqlite+pysqlite:///link/m.sqlite",
                 "sqlite:///file:%s/link/m.sqlite?uri=true" % tmp_path)
    found = {identity.of_url(text) for text in spellings}
    assert found == {"sqlite://%s/real/m.sqlite" % tmp_path}
    assert identity.of_url("sqlite:///real/other.sqlite") not in found


@pytest.mark.parametrize("url, module, expected", [
    ("postgresql://u@h/db", "psycopg",
     ("PostgreSQL", "psycopg2", "pip install 'mistral-db-flows[postgresql]'")),
    ("postgresql+psycopg2://u@h/db", "psycopg2",
     ("PostgreSQL", "psycopg2", "pip install 'mistral-db-flows[postgresql]'")),
    ("mysql://u@h/db", "MySQLdb",
     ("MySQL/MariaDB", "pymysql", "pip install 'mistral-db-flows[mysql]'")),
    ("mariadb+pymysql://u@h/db", "pymysql",
     ("MySQL/MariaDB", "pymysql", "pip install 'mistral-db-flows[mysql]'")),
    ("postgresql+pg8000://u@h/db", "pg8000",
     ("PostgreSQL", "pg8000", "install the Python package of pg8000, or "
      "pip install 'mistral-db-flows[postgresql]' and name "
      "postgresql+psycopg2:// in [database] connection")),
])
def test_missing_driver_names_what_to_install(url, module, expected):
    """The driver our extra carries is named with the extra; another
    driver the URL names is named as such."""
    assert urls.missing_driver(urls.parse(url), module) == expected
