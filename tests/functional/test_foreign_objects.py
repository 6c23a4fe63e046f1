"""Operators' own objects never block an upgrade (issue 11).

An operator's table, an index on a Mistral table, a view, a trigger (and
on PostgreSQL the trigger's function) are kept by ``upgrade head`` and
by ``verify``, and named in a warning; Mistral's own objects still fail
``verify`` when they are missing, and a revision that an operator's view
stops fails with the server's detail naming the view.
"""
from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from mistral_db_flows import api
from mistral_db_flows import cli
from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import revisions
from tests import conftest
from tests import migrate_util

HEAD = revisions.graph().heads[0]
START = "030"  # before 041 widens workflow_executions_v2.description

_AUDIT_TRIGGER = ("CREATE TRIGGER ops_trg AFTER INSERT ON "
                  "workflow_definitions_v2 FOR EACH ROW ")
OBJECTS = {
    # On SQLite, the view and trigger are on a table no later revision
    # touches: a revision that recreates a table (batch mode: copy,
    # drop, rename) drops its triggers, and SQLite refuses to rename a
    # table while a view names the dropped one.
    "sqlite": [
        "CREATE TABLE ops_audit (id INTEGER PRIMARY KEY, note VARCHAR(255))",
        "CREATE INDEX ix_desc ON workflow_executions_v2 (description)",
        "CREATE VIEW ops_names AS SELECT id, name FROM environments_v2",
        "CREATE TRIGGER ops_trg AFTER INSERT ON environments_v2 "
        "BEGIN INSERT INTO ops_audit (note) VALUES (NEW.name); END",
    ],
    "postgresql": [
        "CREATE TABLE ops_audit (id SERIAL PRIMARY KEY, note VARCHAR(255))",
        "CREATE INDEX ix_desc ON workflow_executions_v2 (description)",
        "CREATE VIEW ops_names AS SELECT id, name "
        "FROM workflow_definitions_v2",
        "CREATE FUNCTION ops_log() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO ops_audit (note) VALUES (NEW.name); "
        "RETURN NEW; END $$",
        _AUDIT_TRIGGER + "EXECUTE FUNCTION ops_log()",
    ],
    "mysql": [
        "CREATE TABLE ops_audit (id INT AUTO_INCREMENT PRIMARY KEY, "
        "note VARCHAR(255))",
        # A prefix index, as operators add on a long column.
        "CREATE INDEX ix_desc ON workflow_executions_v2 (description(64))",
        "CREATE VIEW ops_names AS SELECT id, name "
        "FROM workflow_definitions_v2",
        _AUDIT_TRIGGER + "INSERT INTO ops_audit (note) VALUES (NEW.name)",
    ],
}
_LABELS = ["table ops_audit", "index ix_desc on workflow_executions_v2",
           "view ops_names"]
_SERVER_TRIGGER = "trigger ops_trg on workflow_definitions_v2"
LABELS = {"sqlite": _LABELS + ["trigger ops_trg on environments_v2"],
          "mysql": _LABELS + [_SERVER_TRIGGER],
          "postgresql": _LABELS + [_SERVER_TRIGGER, "routine ops_log"]}
WARNING = ("not Mistral's, kept: table ops_audit, "
           "index ix_desc on workflow_executions_v2")

# The catalog queries the test checks with, apart from the code under
# test: (table names, index names of workflow_executions_v2, views,
# triggers).
_TRIGGERS = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
    "postgresql": "SELECT trigger_name FROM information_schema.triggers "
                  "WHERE trigger_schema = current_schema()",
    "mysql": "SELECT trigger_name FROM information_schema.triggers "
             "WHERE trigger_schema = DATABASE()",
}


def settings(url: str) -> conf.Settings:
    return conf.Settings(database_url=url)


def operator_objects(url: str, backend: str) -> dict:
    """What of the operator's objects the database holds."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            return {
                "tables": "ops_audit" in insp.get_table_names(),
                "index": "ix_desc" in [
                    i["name"]
                    for i in insp.get_indexes("workflow_executions_v2")],
                "views": insp.get_view_names(),
                "triggers": [r[0] for r in
                             conn.exec_driver_sql(_TRIGGERS[backend])],
            }
    finally:
        engine.dispose()


KEPT = {"tables": True, "index": True, "views": ["ops_names"],
        "triggers": ["ops_trg"]}


def at_start_with_objects(url: str, backend: str) -> conf.Settings:
    s = settings(url)
    api.upgrade(s, START)
    migrate_util.execute_raw(url, OBJECTS[backend])
    assert operator_objects(url, backend) == KEPT
    return s


def test_upgrade_and_verify_keep_operators_objects(db_url, backend,
                                                   caplog):
    """upgrade head succeeds around the operator's objects, keeps them
    and names them in the verify step's warning (and a WARNING log
    record); a later verify succeeds with the same warning."""
    s = at_start_with_objects(db_url, backend)
    with caplog.at_level(logging.WARNING, logger="mistral_db_flows"):
        run = api.upgrade(s, "head")
    assert (run.state, run.end_revision) == ("upgraded", HEAD)
    detail = run.steps[-1].detail
    assert run.steps[-1].name == "verify" and detail["models"] == "matched"
    assert sorted(detail["not_mistrals"]) == sorted(LABELS[backend])
    assert len(detail["warnings"]) == 1
    assert detail["warnings"][0].startswith(WARNING)
    assert [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING
            and r.name.startswith("mistral_db_flows")] == detail["warnings"]
    assert operator_objects(db_url, backend) == KEPT

    run = api.verify(s)
    assert run.state == "verified"
    assert sorted(run.steps[0].detail["not_mistrals"]) == \
        sorted(LABELS[backend])


def test_missing_mistral_index_still_fails_verify(db_url, backend):
    """Among the operator's objects, a Mistral index dropped by hand
    fails verify (exit 7), naming only that index."""
    s = at_start_with_objects(db_url, backend)
    api.upgrade(s, "head")
    migrate_util.execute_raw(db_url, [
        "DROP INDEX workbooks_v2_scope"
        + (" ON workbooks_v2" if backend == "mysql" else "")])
    with pytest.raises(exceptions.StepFailed) as info:
        api.verify(s)
    err = info.value
    assert (err.step, err.exit_code) == ("verify", 7)
    assert isinstance(err.cause, exceptions.VerifyFailed)
    assert err.cause.problems == ["workbooks_v2: missing index on ['scope']"]


@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_cli_prints_the_warning(db_url, backend, capsys, tmp_path):
    """The operator sees the warning: upgrade head and verify exit 0 and
    name the objects on stderr; JSON carries them in the step detail."""
    at_start_with_objects(db_url, backend)
    config = tmp_path / "mistral.conf"
    config.write_text("[database]\nconnection = %s\n" % db_url)
    assert cli.main(["--config-file", str(config), "upgrade", "head"]) == 0
    assert WARNING in capsys.readouterr().err
    assert cli.main(["--config-file", str(config), "verify"]) == 0
    assert WARNING in capsys.readouterr().err
    assert cli.main(["--config-file", str(config), "--format", "json",
                     "verify"]) == 0
    out = capsys.readouterr().out
    step = json.loads(out)["steps"][0]
    assert step["detail"]["warnings"][0].startswith(WARNING)


@pytest.mark.postgresql
def test_view_on_an_altered_column_names_the_view(make_db, capsys,
                                                  tmp_path):
    """PostgreSQL refuses 041's type change of a column an operator's
    view reads: the run reverts to 030, the view stays, and the error
    (API and CLI, exit 7) carries the server's detail naming the view."""
    url = make_db("postgresql")
    s = settings(url)
    api.upgrade(s, START)
    migrate_util.execute_raw(url, [
        "CREATE VIEW ops_descriptions AS "
        "SELECT id, description FROM workflow_executions_v2"])
    with pytest.raises(exceptions.StepFailed) as info:
        api.upgrade(s, "head")
    err = info.value
    assert err.step == "migrate_041" and err.exit_code == 7
    assert err.run.state == "reverted"
    assert "ops_descriptions" in str(err)
    assert migrate_util.version(url) == START
    assert operator_objects(url, "postgresql")["views"] == [
        "ops_descriptions"]

    config = tmp_path / "mistral.conf"
    config.write_text("[database]\nconnection = %s\n" % url)
    assert cli.main(["--config-file", str(config), "upgrade", "head"]) == 7
    err_text = capsys.readouterr().err
    assert "view ops_descriptions depends on column" in err_text
    assert migrate_util.version(url) == START
