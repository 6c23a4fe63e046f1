"""The one error family: exit codes, the documented tables, the facts.

README's exit-code table (and docs/cli.md's) and docs/api.md's error
table are what operators and embedders read; these tests keep them
equal to ``exceptions.ExitCode`` and to the error classes, their
attributes and exit codes, so the documents cannot drift from the code.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import sqlite3

import pytest

from mistral_db_flows import exceptions

ROOT = pathlib.Path(__file__).resolve().parents[2]
ExitCode = exceptions.ExitCode


def _table(path: pathlib.Path, header: str) -> list[list[str]]:
    """The cells of the markdown table under the header row ``header``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert header in lines, "%s has no table %r" % (path, header)
    rows = []
    for line in lines[lines.index(header) + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _error_classes() -> dict[str, type]:
    """Every public error class, as ``exceptions`` exports them."""
    found = {}
    for name in exceptions.__all__:
        value = getattr(exceptions, name)
        if isinstance(value, type) and issubclass(
                value, exceptions.MistralDbError) \
                and value is not exceptions.MistralDbError:
            found[name] = value
    return found


def _facts(cls: type) -> set[str]:
    """The attributes a class and its bases declare (below the base
    class, whose ``exit_code`` and ``message`` every error has)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is exceptions.MistralDbError:
            break
        names |= {name for name in vars(klass).get("__annotations__", {})
                  if not name.startswith("_")}
    return names


@pytest.mark.parametrize("document", ["README.md", "docs/cli.md"])
def test_exit_code_tables_list_exit_code(document):
    """The operators' exit-code tables list exactly ExitCode's values,
    in order."""
    rows = _table(ROOT / document, "| code | meaning |")
    assert [int(row[0]) for row in rows] == sorted(ExitCode)


def test_exit_code_values():
    """The codes deployment tools rely on (README's table)."""
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "ERROR": 1, "USAGE": 2, "UNREACHABLE": 3,
        "UNKNOWN_REVISION": 4, "BRANCHES": 5, "SCHEMA_CONFLICT": 6,
        "STEP_FAILED": 7, "BACKUP_FAILED": 8, "RESTORE_FAILED": 9,
        "UPGRADE_NEEDED": 10, "LOCKED": 11, "RESUME_REFUSED": 12,
        "POPULATE_DEFINITIONS": 13, "CONNECTED": 14,
        "REVERT_DATA_MISSING": 15, "INTERRUPTED": 130, "BROKEN_PIPE": 141,
        "TERMINATED": 143}


def test_api_md_error_table_is_every_error_class():
    """docs/api.md lists every error class once, with the attributes it
    declares and its exit code (a StepFailed's first: the others are
    its cause's)."""
    rows = _table(ROOT / "docs" / "api.md",
                  "| error | attributes | exit code |")
    documented = {row[0].strip("`"): row for row in rows}
    assert len(documented) == len(rows), "a class is listed twice"
    classes = _error_classes()
    assert set(documented) == set(classes)
    for name, cls in classes.items():
        _, attributes, code = documented[name]
        # Words in brackets explain; the attributes are outside them.
        named = re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", attributes))
        assert set(named) == _facts(cls), name
        assert int(re.match(r"\d+", code).group()) == cls.exit_code, name


def test_every_error_declares_an_exit_code_of_the_table():
    """No bare ints: every error's exit_code is an ExitCode member."""
    for name, cls in _error_classes().items():
        assert isinstance(cls.exit_code, ExitCode), name


def test_one_home():
    """The old homes of errors are gone: one import path."""
    for module in ("mistral_db_flows.backup_errors",
                   "mistral_db_flows.populate.errors"):
        assert importlib.util.find_spec(module) is None, module
    from mistral_db_flows import cli
    from mistral_db_flows import locking

    for module, name in ((cli, "UsageError"), (locking, "LockError"),
                         (locking, "LockTimeout")):
        assert not hasattr(module, name), (module, name)


def test_facts_are_declared_keywords_not_anything():
    """Backup and restore errors take their facts as declared keyword
    arguments: an unknown one is a TypeError, not a new attribute."""
    err = exceptions.BackupError("full", reason="no-space", path="/b/x",
                                 database="mistral", needed=20, free=10)
    assert (err.reason, err.path, err.database, err.needed, err.free,
            err.tool) == ("no-space", "/b/x", "mistral", 20, 10, None)
    err = exceptions.RestoreError("gone", reason="lock-timeout",
                                  changed=True, table="t", lock_wait=2.0)
    assert (err.changed, err.table, err.lock_wait, err.path) == (
        True, "t", 2.0, None)
    with pytest.raises(TypeError):
        exceptions.BackupError("x", reason="tool-failed", colour="red")
    with pytest.raises(TypeError):
        exceptions.RestoreError("x", reason="tool-failed", needed=1)


@pytest.mark.parametrize("cause, restore_error, code", [
    ("boom", None, 7),
    (RuntimeError("boom"), None, 7),
    (exceptions.SchemaConflict("index", "ix", "t", "a", "b"), None, 6),
    (exceptions.ConnectionLost("postgresql://u:***@h/d", "gone"), None, 3),
    (exceptions.BackupError("full", reason="no-space"), None, 8),
    ("boom", exceptions.RestoreError("x", reason="tool-failed"), 9),
    (exceptions.SchemaConflict("index", "ix", "t", "a", "b"),
     "restore broke", 9),
])
def test_step_failed_exits_with_what_matters(cause, restore_error, code):
    """A failed restore first (9), then the cause's own code, else 7;
    the message names the step, then the restore's error last."""
    err = exceptions.StepFailed("migrate_013", cause, aftermath="after",
                                restore_error=restore_error)
    assert err.exit_code == code
    assert str(err).startswith("step migrate_013 failed: ")
    if restore_error is not None:
        assert str(err).endswith("; after; restore: %s" % restore_error)


def test_connection_lost_is_unreachable_and_says_lost():
    """A lost connection is a kind of unreachable database (exit 3)."""
    err = exceptions.ConnectionLost("postgresql://u:***@h/d",
                                    "server closed the connection")
    assert isinstance(err, exceptions.DatabaseUnreachable)
    assert err.exit_code == 3
    assert str(err) == ("lost the connection to postgresql://u:***@h/d: "
                        "server closed the connection")


def _driver_error(kind: str, *args: object) -> Exception:
    """An error of a driver's class named ``kind`` (no driver needed)."""
    return type(kind, (Exception,), {})(*args)


class _Wrapped(Exception):
    """SQLAlchemy's wrapper: ``orig`` is the driver's error."""

    def __init__(self, orig: Exception, invalidated: bool = False) -> None:
        super().__init__(str(orig))
        self.orig = orig
        self.connection_invalidated = invalidated


@pytest.mark.parametrize("error", [
    _driver_error("OperationalError", "terminating connection due to "
                  "administrator command\nserver closed the connection "
                  "unexpectedly"),
    _driver_error("OperationalError", "server closed the connection "
                  "unexpectedly"),
    _driver_error("InterfaceError", "connection already closed"),
    _driver_error("OperationalError", "consuming input failed: the "
                  "connection is closed"),
    _driver_error("OperationalError", 2013, "Lost connection to MySQL "
                  "server during query"),
    _driver_error("OperationalError", 2006, "MySQL server has gone away"),
    _driver_error("OperationalError", 1927, "Connection was killed"),
    _driver_error("InterfaceError", 0, ""),
    _Wrapped(_driver_error("OperationalError", 2013, "Lost connection")),
    _Wrapped(_driver_error("OperationalError", "anything"),
             invalidated=True),
], ids=lambda error: str(error)[:30])
def test_connection_lost_recognised(error):
    assert exceptions.is_connection_lost(error)


@pytest.mark.parametrize("error", [
    _driver_error("OperationalError", 1205, "Lock wait timeout exceeded"),
    _driver_error("ProgrammingError", "relation \"x\" does not exist"),
    _driver_error("OperationalError", "could not serialize access"),
    sqlite3.OperationalError("database is locked"),
    sqlite3.InterfaceError("Error binding parameter 0"),
    RuntimeError("server closed the connection unexpectedly"),
    _Wrapped(_driver_error("IntegrityError", 1062, "Duplicate entry")),
    exceptions.DatabaseUnreachable("x://", "refused"),
    "server closed the connection unexpectedly",
    None,
], ids=lambda error: str(error)[:30])
def test_other_errors_are_not_a_lost_connection(error):
    assert not exceptions.is_connection_lost(error)


@pytest.mark.parametrize("problem, advice", [
    ("database or disk is full", "free space there"),
    ("No space left on device", "free space there"),
    ("file is not a database", "move a damaged file away"),
    ("Read-only file system", "fix its directory"),
])
def test_logbook_error_names_the_file_and_the_way_out(problem, advice):
    err = exceptions.LogbookError("/state/logbook.sqlite", problem)
    assert (err.path, err.problem, err.exit_code) == (
        "/state/logbook.sqlite", problem, 1)
    assert str(err).startswith("the run logbook /state/logbook.sqlite "
                               "cannot be used: %s; " % problem)
    assert advice in str(err)


class _Diag:
    message_detail = ("rule _RETURN on view ops_v depends on column "
                      "\"description\"")


class _DriverError(Exception):
    diag = _Diag()


class _WrappedError(Exception):
    """Like SQLAlchemy's DBAPIError: the driver's error as ``orig``."""

    orig = _DriverError("cannot alter type of a column used by a view")


@pytest.mark.parametrize("cause", [
    _DriverError("cannot alter type of a column used by a view"),
    _WrappedError("(psycopg2.errors.FeatureNotSupported) cannot alter "
                  "type of a column used by a view or rule\n"
                  "DETAIL:  rule _RETURN on view ops_v depends on column"),
])
def test_step_failed_carries_the_servers_detail(cause):
    """The server's DETAIL (psycopg2 ``diag``), which names the view in
    the way, joins the cause's first line in the message."""
    err = exceptions.StepFailed("migrate_041", cause, aftermath="after")
    assert str(err).endswith(
        "(rule _RETURN on view ops_v depends on column \"description\"); "
        "after")
    plain = exceptions.StepFailed("migrate_041", RuntimeError("boom"))
    assert str(plain) == "step migrate_041 failed: boom"
