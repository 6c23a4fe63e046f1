"""Database URLs: one reading, one rendering with the password hidden.

Every module reads a URL through :func:`parse`, which gives one frozen
:class:`Url`: backend (``mariadb`` counts as ``mysql``), driver, host,
port, database, user, query, and a password that no ``repr`` or
rendering shows. The reading is SQLAlchemy's, so a URL means here what
it means to Mistral, with one difference: a password holding a raw
``@`` (which SQLAlchemy would split at its first ``@``, sending part of
the password to DNS as a host name) is read up to the last ``@``.

:func:`mask_text` hides the password field of every URL found in a
text (a driver's message, a tool's stderr, a log line), by URL syntax:
never a substring of other text, which made ``mistral`` unreadable
wherever the password happened to be ``mistral``.

A leaf: nothing of the project is imported, nor SQLAlchemy, except by
:meth:`Url.to_sqlalchemy`; ``status`` and ``populate`` parse URLs
without paying for that import.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import urllib.parse
from typing import Any, Iterable

HIDDEN = "***"
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


class UrlError(ValueError):
    """Not a URL we can read. ``url`` is the text with its password
    hidden; ``reason`` says what is wrong with it."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__("%s: %s" % (url, reason))


@dataclasses.dataclass(frozen=True)
class Url:
    """A parsed database URL. ``str()`` renders it, password hidden."""

    dialect: str                  # as written, lower case: mariadb stays
    driver: str | None = None
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: tuple[tuple[str, str], ...] = ()
    # The text it was read from (password included: never show it), so
    # that what connects with it is the same URL to the last byte.
    text: str = dataclasses.field(default="", repr=False, compare=False)

    @property
    def backend(self) -> str:
        """``sqlite``, ``postgresql``, ``mysql`` (MariaDB too), ..."""
        return "mysql" if self.dialect == "mariadb" else self.dialect

    @property
    def drivername(self) -> str:
        return "%s+%s" % (self.dialect, self.driver) if self.driver \
            else self.dialect

    @property
    def options(self) -> dict[str, str]:
        """The query options (the last value of a repeated key)."""
        return dict(self.query)

    def render(self, *, hide_password: bool = True) -> str:
        """The URL as text, as SQLAlchemy renders it; the password is
        shown only with ``hide_password=False`` (to connect with)."""
        text = self.drivername + "://"
        if self.user is not None:
            text += _quote(self.user)
            if self.password is not None:
                text += ":" + (HIDDEN if hide_password
                               else _quote(self.password))
            text += "@"
        if self.host is not None:
            text += "[%s]" % self.host if ":" in self.host else self.host
        if self.port is not None:
            text += ":%d" % self.port
        if self.database is not None:
            text += "/" + urllib.parse.quote(self.database, safe=" +/")
        if self.query:
            text += "?" + "&".join(
                "%s=%s" % (urllib.parse.quote_plus(key),
                           urllib.parse.quote_plus(value))
                for key, value in sorted(self.query,
                                         key=lambda item: item[0]))
        return text

    def __str__(self) -> str:
        return self.render()

    def replace(self, **changes: Any) -> "Url":
        """A copy with ``changes``; its text is its rendering."""
        changed = dataclasses.replace(self, text="", **changes)
        return dataclasses.replace(
            changed, text=changed.render(hide_password=False))

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite database file as written (relative paths are the
        current directory's); None for an in-memory database."""
        name = self.database or ""
        options = self.options
        if options.get("uri", "").lower() in ("true", "1"):
            # SQLite reads the name as a file: URI, with the URL's other
            # options added to the URI's own (SQLAlchemy passes both).
            parsed = urllib.parse.urlsplit(name)
            if parsed.scheme == "file":
                options.update(urllib.parse.parse_qsl(parsed.query))
                name = urllib.parse.unquote(parsed.path)
            if options.get("mode") == "memory":
                return None
        return None if name in ("", ":memory:") else name

    def with_installed_driver(self) -> "Url":
        """This URL naming an installed driver when it names none.

        SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3, while
        Mistral's configs were written for psycopg2: the first installed
        one is taken, so a config that works for Mistral works here.
        """
        if self.driver is not None:
            return self
        for module, driver in _DRIVERS.get(self.dialect, ()):
            if importlib.util.find_spec(module) is not None:
                return self.replace(driver=driver)
        return self

    def to_sqlalchemy(self) -> Any:
        """SQLAlchemy's URL of the same parts (imports SQLAlchemy)."""
        from sqlalchemy.engine import url as sa_url

        query: dict[str, Any] = {}
        for key, value in self.query:
            query[key] = value if key not in query else (
                tuple(query[key]) + (value,) if isinstance(query[key], tuple)
                else (query[key], value))
        return sa_url.URL.create(
            self.drivername, username=self.user, password=self.password,
            host=self.host, port=self.port, database=self.database,
            query=query)

    def direct(self) -> tuple[str, dict[str, Any]] | None:
        """The DB-API module and ``connect()`` keywords that open this
        database as SQLAlchemy would, without SQLAlchemy; None where
        only SQLAlchemy knows how (other drivers, options it
        translates)."""
        keys = [key for key, _ in self.query]
        if self.backend == "sqlite":
            if self.driver in (None, "pysqlite") and not keys:
                return "sqlite3", {"database": self.database or ":memory:"}
            return None
        if len(set(keys)) != len(keys):
            return None  # repeated keys: SQLAlchemy's multi-host forms
        names = {"host": self.host, "port": self.port, "user": self.user,
                 "password": self.password}
        if self.backend == "postgresql" and self.driver in (None,
                                                             "psycopg2"):
            # libpq takes every query option itself, as SQLAlchemy
            # passes them on (host=/var/run/postgresql: the socket).
            kwargs = dict(names, dbname=self.database)
            kwargs.update(self.options)
            return "psycopg2", {k: v for k, v in kwargs.items()
                                if v is not None}
        if self.backend == "mysql" and self.driver == "pymysql" \
                and set(keys) <= {"charset", "unix_socket"}:
            kwargs = dict(names, database=self.database)
            kwargs.update(self.options)
            kwargs.setdefault("charset", "utf8mb4")
            return "pymysql", {k: v for k, v in kwargs.items()
                               if v is not None}
        return None


# The driver each backend's package extra installs (setup.cfg), with
# the name operators know the backend by.
_EXTRAS = {"postgresql": ("PostgreSQL", "psycopg2", "postgresql"),
           "mysql": ("MySQL/MariaDB", "pymysql", "mysql")}


def missing_driver(url: Url, module: str | None) -> tuple[str, str, str]:
    """What to tell an operator whose ``url`` needs a driver that cannot
    be imported (``module``, as the ImportError names it): the backend,
    the driver and how to install it."""
    label, ours, extra = _EXTRAS.get(url.backend,
                                     (url.backend, None, None))
    driver = url.driver or ours or module or url.dialect
    if extra is not None and driver == ours:
        return label, driver, "pip install 'mistral-db-flows[%s]'" % extra
    hint = "install the Python package of %s" % (module or driver)
    if extra is not None:
        hint += (", or pip install 'mistral-db-flows[%s]' and name "
                 "%s+%s:// in [database] connection"
                 % (extra, url.dialect, ours))
    return label, driver, hint


_DRIVERS = {"postgresql": (("psycopg", "psycopg"), ("psycopg2", "psycopg2")),
            "mysql": (("MySQLdb", "mysqldb"), ("pymysql", "pymysql")),
            "mariadb": (("MySQLdb", "mysqldb"), ("pymysql", "pymysql"))}


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe=" +")


# -- reading ---------------------------------------------------------------

_SCHEME = re.compile(r"(?P<scheme>[\w+]+)://(?P<rest>.*)", re.S)
# SQLAlchemy's own pattern (sqlalchemy.engine.url._parse_url), whole.
_SA_REST = re.compile(r"""
    (?:(?P<user>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6>[^/?]+)\]|(?P<host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?""", re.X | re.S)
# The same with the password running to the last '@' (hosts, ports and
# database names hold none).
_LAST_AT_REST = re.compile(r"""
    (?P<user>[^:/]*):(?P<password>.*)@
    (?:(?:\[(?P<ipv6>[^/?@]+)\]|(?P<host>[^/:?@]+))?
       (?::(?P<port>[^/?@]*))?)?
    (?:/(?P<database>[^?@]*))?
    (?:\?(?P<query>[^@]*))?""", re.X | re.S)
# A query part with an '@' but no key=: a password's tail, not options.
_QUERY_PART = re.compile(r"[\w.\-]+=.*|[^@]*", re.S)


def parse(text: str) -> Url:
    """Read a database URL; raise :class:`UrlError` when it cannot be."""
    if not isinstance(text, str):
        raise UrlError(HIDDEN, "a URL must be text")
    head = _SCHEME.fullmatch(text)
    if head is None:
        raise UrlError(_unreadable(text), "it is not a URL of the form "
                       "dialect[+driver]://user:password@host:port/database")
    scheme = head["scheme"].lower()
    dialect, _, driver = scheme.partition("+")
    rest = head["rest"]
    parts = _SA_REST.fullmatch(rest)
    if parts is not None and parts["password"] is not None \
            and not _plausible(parts):
        # SQLAlchemy's reading puts an '@' where no host, port or
        # database has one: the password holds it.
        parts = _LAST_AT_REST.fullmatch(rest)
    if parts is None or not _plausible(parts):
        raise UrlError(_unreadable(text), "its host, port or database "
                       "cannot be read; percent-encode special characters "
                       "of the user name and password (e.g. @ as %40)")
    port = parts["port"]
    query = tuple(urllib.parse.parse_qsl(parts["query"] or ""))

    def unquote(value: str | None) -> str | None:
        return urllib.parse.unquote(value) if value is not None else None

    return Url(dialect=dialect, driver=driver or None,
               user=unquote(parts["user"]),
               password=unquote(parts["password"]),
               host=parts["ipv6"] or parts["host"] or None,
               port=int(port) if port else None,
               database=unquote(parts["database"]), query=query,
               text=text)


def _unreadable(text: str) -> str:
    """A text that is no URL we can read, as messages may show it: from
    its first ':' to its last '@' hidden (a password may be anywhere
    in there)."""
    text = mask_text(text)
    colon, at = text.find(":"), text.rfind("@")
    return text[:colon + 1] + HIDDEN + text[at:] if 0 <= colon < at \
        else text


def _plausible(parts: re.Match) -> bool:
    if "@" in (parts["host"] or "") + (parts["port"] or "") \
            + (parts["database"] or ""):
        return False
    port = parts["port"]
    if port and not (port.isascii() and port.isdigit()):
        return False
    query = parts["query"]
    return not query or all(_QUERY_PART.fullmatch(p)
                            for p in query.split("&") if p)


def missing_sqlite_file(url: str) -> str | None:
    """The absolute path of a SQLite database file that does not exist.

    None for other databases, for in-memory SQLite databases (no file
    of theirs to name) and for URLs that do not parse (reading them
    then says why).
    """
    try:
        parsed = parse(url)
    except UrlError:
        return None
    path = parsed.sqlite_path if parsed.backend == "sqlite" else None
    if path is None or os.path.exists(path):
        return None
    return os.path.abspath(path)


def masked(text: str) -> str:
    """``text`` as it may appear in messages: the URL rendered with its
    password hidden, or, when it cannot be read, the text with whatever
    URL syntax calls a password hidden."""
    try:
        return parse(text).render()
    except UrlError as exc:
        return exc.url


# -- masking in free text --------------------------------------------------

# scheme://user:PASSWORD@ in running text; the password runs to the
# last '@' before white space (hosts hold none).
_IN_TEXT = re.compile(r"(?P<head>\b[A-Za-z][\w+.\-]*://[^\s:/]*:)"
                      r"(?P<secret>\S*)(?P<tail>@[^\s@]*)")
# password=... as libpq connection strings and option files spell it.
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pgpassword)\s*=\s*)"
    r"(?P<secret>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)",
    re.I)


def mask_text(text: str, known: Iterable[str | None] = ()) -> str:
    """``text`` with every URL's password field hidden.

    URLs are found by their syntax, and ``known`` URLs (e.g. the
    configured connection, which may hold white space) wherever they
    appear whole; so are ``password=`` values of connection strings.
    Nothing else is touched.
    """
    for url in sorted({u for u in known if u}, key=len, reverse=True):
        if url in text:
            text = text.replace(url, masked(url))
    text = _IN_TEXT.sub(lambda m: m["head"] + HIDDEN + m["tail"], text)
    return _KEY_VALUE.sub(lambda m: m["head"] + HIDDEN, text)


def first_line(message: object, url: str | None = None) -> str:
    """The first line of a driver's or tool's message, as errors quote
    it: every URL's password hidden (``url``'s wherever it appears)."""
    lines = str(message).strip().splitlines()
    return mask_text(lines[0] if lines else "unknown error", (url,))
