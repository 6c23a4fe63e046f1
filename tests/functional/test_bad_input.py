"""The bad-input catalogue: one clear line, a documented code, nothing touched.

Each row of CASES is one mistake an operator can make. For each, the test
checks that ``mistral-db-manage``:
- exits with the documented code,
- writes exactly one line on stderr, containing the expected words and no
  traceback,
- leaves the database as it was (schema dump and ``alembic_version``), and
  creates no ``mistral.sqlite`` in the working directory,
- never prints the password, anywhere (PostgreSQL URLs carry one: the
  test server trusts local connections, so it is sent nowhere but must
  still be masked).
"""
from __future__ import annotations

import dataclasses
import os

import pytest
import sqlalchemy as sa

from mistral_db_flows import cli
from mistral_db_flows import migration
from mistral_db_flows import schema_dump
from tests import dbs

PASSWORD = "s3cret-pw"
START = "030"  # every prepared database sits here: below and above exist
SERVERS = ("postgresql", "mysql")
ALL = ("sqlite",) + SERVERS


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    message: str
    # "db": the prepared database; "stamped-999": same, stamped '999';
    # "missing" / "directory" / "malformed" / "binary": a bad config file;
    # "missing-dir": a good file plus a --config-dir that does not exist;
    # "url:<url>": a config file with that connection ({pw} = PASSWORD).
    conf: str = "db"
    backends: tuple[str, ...] = ("sqlite",)


PG_DOWN = "url:postgresql+psycopg2://mistral:{pw}@127.0.0.1:1/mistral"
MYSQL_DOWN = "url:mysql+pymysql://mistral:{pw}@127.0.0.1:1/mistral"
PG_NO_USER = ("url:postgresql+psycopg2://mdf_no_such_user:{pw}"
              "@127.0.0.1:5432/postgres")
MYSQL_BAD_PW = "url:mysql+pymysql://root:{pw}@127.0.0.1:3306/mysql"

CASES = [
    # Configuration.
    Case("missing-config-file", ("current",), 2, "config file not found",
         conf="missing"),
    Case("missing-config-dir", ("current",), 2,
         "config directory not found", conf="missing-dir"),
    Case("config-file-is-a-directory", ("upgrade", "head"), 2,
         "cannot be read", conf="directory"),
    Case("malformed-config-file", ("upgrade", "head"), 2,
         "cannot be parsed", conf="malformed"),
    Case("config-file-not-text", ("upgrade", "head"), 2, "not UTF-8",
         conf="binary"),
    Case("malformed-url", ("upgrade", "head"), 2, "bad database URL",
         conf="url:not a url at all"),
    Case("unknown-url-scheme", ("current",), 2, "bad database URL",
         conf="url:nosuchdb://mistral:{pw}@127.0.0.1/mistral"),
    # Servers.
    Case("unreachable-postgresql", ("upgrade", "head"), 3, "cannot connect",
         conf=PG_DOWN),
    Case("unreachable-postgresql-current", ("current",), 3,
         "cannot connect", conf=PG_DOWN),
    Case("unreachable-mysql", ("upgrade", "head"), 3, "cannot connect",
         conf=MYSQL_DOWN),
    Case("unknown-postgresql-user", ("upgrade", "head"), 3,
         "cannot connect", conf=PG_NO_USER, backends=("postgresql",)),
    Case("wrong-mysql-password", ("upgrade", "head"), 3, "cannot connect",
         conf=MYSQL_BAD_PW, backends=("mysql",)),
    # Targets.
    Case("unknown-revision", ("upgrade", "999"), 4, "unknown revision",
         backends=ALL),
    Case("stamp-unknown-revision", ("stamp", "999"), 4, "unknown revision",
         backends=ALL),
    Case("range-backwards", ("upgrade", "030:001", "--sql"), 2, "030:001",
         backends=ALL),
    Case("range-not-revisions", ("upgrade", "abc:def", "--sql"), 4,
         "unknown revision 'abc'", backends=ALL),
    Case("range-empty", ("upgrade", ":", "--sql"), 2, "bad range ':'",
         backends=ALL),
    Case("range-without-sql", ("upgrade", "001:010"), 2, "--sql"),
    Case("delta-zero", ("upgrade", "--delta", "0"), 2, "1 or more",
         backends=ALL),
    Case("delta-negative", ("upgrade", "--delta", "-1"), 2, "1 or more",
         backends=ALL),
    Case("relative-zero", ("upgrade", "+0"), 2, "1 or more"),
    Case("relative-past-head", ("upgrade", "+16"), 2, "past head",
         backends=ALL),
    Case("upgrade-without-target", ("upgrade",), 2,
         "You must provide a revision or relative delta"),
    Case("stamp-without-revision", ("stamp",), 2, "stamp needs a revision",
         backends=ALL),
    Case("stamped-unknown-upgrade", ("upgrade", "head"), 4, "'999'",
         conf="stamped-999", backends=ALL),
    Case("stamped-unknown-current", ("current",), 4, "'999'",
         conf="stamped-999", backends=ALL),
    Case("stamped-unknown-status", ("status",), 1, "'999'",
         conf="stamped-999"),
    # Offline where it cannot be.
    Case("sql-populate", ("populate", "--sql"), 2, "cannot run offline"),
    Case("sql-populate-actions", ("populate_actions", "--sql"), 2,
         "cannot run offline"),
    Case("sql-status", ("status", "--sql"), 2, "cannot run offline"),
    Case("sql-current", ("current", "--sql"), 2, "cannot run offline"),
    Case("sql-verify", ("verify", "--sql"), 2, "cannot run offline"),
    # Commands.
    Case("unknown-command", ("frobnicate", "-1"), 2,
         "invalid choice: 'frobnicate'"),
    Case("downgrade-up", ("downgrade", "head"), 2, "older revision id"),
    Case("downgrade-no-target", ("downgrade",), 2,
         "downgrade needs a target"),
]


def _params():
    for case in CASES:
        for backend in case.backends:
            marks = [getattr(pytest.mark, backend)] \
                if backend in SERVERS else []
            yield pytest.param(case, backend, id="%s-%s" % (case.id, backend),
                               marks=marks)


def _with_password(url: str) -> str:
    """PostgreSQL trusts local users: a password is accepted, unused."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.set(password=PASSWORD).render_as_string(
        hide_password=False)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """One database per backend at START, shared: no case may change it."""
    urls: dict[str, str] = {}

    def get(backend: str) -> str:
        if backend not in urls:
            try:
                dbs.check_available(backend)
            except dbs.Unavailable as exc:
                if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                    pytest.fail(str(exc))
                pytest.skip(str(exc))
            url = dbs.create(backend, tmp_path_factory.mktemp(backend))
            migration.upgrade(url, START)
            urls[backend] = url
        return urls[backend]

    yield get
    for url in urls.values():
        dbs.drop(url)


def _version(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(sa.text(
                "SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def _set_version(url: str, revision: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = "
                                 ":v"), {"v": revision})
    finally:
        engine.dispose()


def _snapshot(url: str) -> tuple[dict, list[str]]:
    return schema_dump.dump_url(url), _version(url)


def _config_args(case: Case, url: str | None, tmp_path) -> list[str]:
    """The --config-file (and --config-dir) arguments of a case."""
    path = tmp_path / "mistral.conf"
    if case.conf == "missing":
        return ["--config-file", str(tmp_path / "no-such.conf")]
    if case.conf == "directory":
        return ["--config-file", str(tmp_path)]
    if case.conf == "malformed":
        path.write_text("[database\nconnection = sqlite://\n")
    elif case.conf == "binary":
        path.write_bytes(b"\xff\xfe[database]\n\x00\x81")
    elif case.conf == "missing-dir":
        path.write_text("[DEFAULT]\n")
        return ["--config-file", str(path),
                "--config-dir", str(tmp_path / "no-such.d")]
    else:
        if case.conf.startswith("url:"):
            url = case.conf[len("url:"):].format(pw=PASSWORD)
        path.write_text("[database]\nconnection = %s\n" % url)
    return ["--config-file", str(path)]


@pytest.mark.parametrize("case, backend", list(_params()))
def test_bad_input(case, backend, prepared, tmp_path, monkeypatch, capsys):
    """One mistake: documented code, one line, nothing changed, no secret."""
    needs_db = case.conf in ("db", "stamped-999")
    if backend in SERVERS and not needs_db and \
            case.conf not in (PG_DOWN, MYSQL_DOWN):
        try:  # the case talks to the real server (wrong credentials)
            dbs.check_available(backend)
        except dbs.Unavailable as exc:
            pytest.skip(str(exc))
    url = _with_password(prepared(backend)) if needs_db else None
    if case.conf == "stamped-999":
        _set_version(url, "999")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    try:
        before = _snapshot(url) if url else None
        code = cli.main(_config_args(case, url, tmp_path) + list(case.argv))
        out, err = capsys.readouterr()
        after = _snapshot(url) if url else None
    finally:
        if case.conf == "stamped-999":
            _set_version(url, START)
    assert PASSWORD not in out + err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mistral-db-manage: error: "), err
    assert case.message in lines[0], lines[0]
    assert code == case.code, lines[0]
    assert out == ""
    assert before == after
    assert os.listdir(workdir) == []


@pytest.mark.parametrize("url", [PG_DOWN, MYSQL_DOWN])
def test_debug_traceback_masks_password(url, tmp_path, capsys):
    """--debug prints the traceback and DEBUG logs, never the password."""
    conf = tmp_path / "mistral.conf"
    conf.write_text("[database]\nconnection = %s\n"
                    % url[len("url:"):].format(pw=PASSWORD))
    code = cli.main(["--config-file", str(conf), "--debug", "upgrade",
                     "head"])
    out, err = capsys.readouterr()
    assert code == 3
    assert "Traceback" in err and "***" in err
    assert PASSWORD not in out + err
