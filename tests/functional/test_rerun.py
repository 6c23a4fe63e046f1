"""Every revision completes when re-run after being half applied.

MySQL and SQLite commit DDL statement by statement, so a crash can leave
a revision partly done while alembic_version still names the previous
one. Two crashes are simulated for every revision:

* partial: the first half of the revision's own statements (taken from
  its offline script) ran, then the process died;
* complete: every statement ran but the version was not recorded.

In both cases ``upgrade`` must finish the revision and give exactly the
reference schema.
"""
from __future__ import annotations

import pytest

from mistral_db_flows import migration
from tests import migrate_util
from tests import reference


def _previous(revision: str) -> str | None:
    i = reference.REVISIONS.index(revision)
    return reference.REVISIONS[i - 1] if i else None


@pytest.mark.slow
def test_each_revision_completes_after_a_crash(db_url):
    """Walk the history crashing inside and after every revision."""
    backend = migrate_util.backend_of(db_url)
    failures = {}
    for revision in reference.REVISIONS:
        previous = _previous(revision)
        if backend != "sqlite" and previous is not None:
            statements = migrate_util.offline_statements(
                db_url, previous, revision)
            try:
                migrate_util.execute_raw(
                    db_url, statements[:max(1, len(statements) // 2)])
                migration.upgrade(db_url, revision)
            except Exception as exc:  # report every revision at once
                failures[revision + " partial"] = repr(exc)
                migration.upgrade(db_url, revision)
        else:
            migration.upgrade(db_url, revision)
        if previous is not None:
            migrate_util.set_version(db_url, previous)
            try:
                migration.upgrade(db_url, revision)
            except Exception as exc:
                failures[revision + " complete"] = repr(exc)
                migrate_util.set_version(db_url, revision)
        diff = migrate_util.schema_diff(db_url, revision)
        if diff:
            failures[revision + " schema"] = diff
    assert failures == {}


def test_rerun_of_a_finished_revision_is_a_no_op(db_url):
    """Re-running the head revision after a lost version write works."""
    migration.upgrade(db_url, "head")
    migrate_util.set_version(db_url, reference.REVISIONS[-2])
    migration.upgrade(db_url, "head")
    assert migrate_util.version(db_url) == reference.HEAD
    assert migrate_util.schema_diff(db_url, reference.HEAD) == []


def test_flow_step_falls_back_to_careful_run_after_a_crash(db_url, tmp_path,
                                                          caplog):
    """A migrate step first runs its revision without schema checks; on
    a half-applied revision that attempt fails and the careful re-run
    completes it."""
    from mistral_db_flows import api
    from mistral_db_flows import conf

    caplog.set_level("INFO", logger="mistral_db_flows.tasks.migrate")
    settings = conf.Settings(database_url=db_url,
                             state_dir=str(tmp_path / "state"))
    migration.upgrade(db_url, "009")
    migrate_util.set_version(db_url, "008")  # 009 ran, not recorded
    run = api.upgrade(settings, "010")
    assert run.state == "upgraded"
    assert any("revision 009: retrying" in r.getMessage()
               for r in caplog.records)
    assert migrate_util.schema_diff(db_url, "010") == []
