"""Migrating an empty database gives upstream Mistral's schema.

Exact (names, native types, column order, defaults) on PostgreSQL and
MariaDB against upstream's dumps; generic against PostgreSQL's on SQLite.
"""
from __future__ import annotations

import pytest

from mistral_db_flows import api
from mistral_db_flows import conf
from mistral_db_flows import migration
from tests import conftest
from tests import dbs
from tests import migrate_util
from tests import reference


# Servers slow: test_guarded_upgrade_head_matches_reference runs the
# same revisions to the same head on every backend (the servers' smoke
# test).
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_upgrade_head_matches_reference(db_url):
    """upgrade head from empty equals the reference head schema."""
    migration.upgrade(db_url, "head")
    assert migrate_util.version(db_url) == reference.HEAD
    assert migrate_util.schema_diff(db_url, reference.HEAD) == []


# Servers slow: re-running a finished revision on each server is checked
# in test_rerun.test_rerun_of_a_finished_revision_is_a_no_op.
@pytest.mark.parametrize("backend", conftest.SQLITE_QUICK, indirect=True)
def test_upgrade_head_twice_changes_nothing(db_url):
    """A second upgrade head is a no-op, not an error."""
    migration.upgrade(db_url, "head")
    migration.upgrade(db_url, "head")
    assert migrate_util.schema_diff(db_url, reference.HEAD) == []


@pytest.mark.slow
def test_every_revision_matches_reference(db_url):
    """Walking 001..045 one step at a time matches every reference dump."""
    failures = {}
    for revision in reference.REVISIONS:
        migration.upgrade(db_url, revision)
        diff = migrate_util.schema_diff(db_url, revision)
        if diff:
            failures[revision] = diff
    assert failures == {}


def _settings(url: str, tmp_path) -> conf.Settings:
    return conf.Settings(database_url=url, state_dir=str(tmp_path / "st"))


# The smoke test of each server: the quick subset's one full upgrade
# there, so a broken driver or server shows at once.
@pytest.mark.parametrize("backend", conftest.backend_params(dbs.BACKENDS),
                         indirect=True)
def test_guarded_upgrade_head_matches_reference(db_url, tmp_path, caplog):
    """The flow (fast first attempt per step, then verify) reaches the
    reference head schema too, and no step needed its careful retry."""
    caplog.set_level("INFO", logger="mistral_db_flows.tasks.migrate")
    run = api.upgrade(_settings(db_url, tmp_path), "head")
    assert [r.getMessage() for r in caplog.records
            if "retrying" in r.getMessage()] == []
    assert run.state == "upgraded"
    assert all(step.detail["applied"] for step in run.steps
               if step.name.startswith("migrate_"))
    assert migrate_util.schema_diff(db_url, reference.HEAD) == []


@pytest.mark.slow
def test_guarded_step_by_step_matches_every_reference(db_url, tmp_path):
    """One flow run per revision: every step's schema is upstream's."""
    settings = _settings(db_url, tmp_path)
    failures = {}
    for revision in reference.REVISIONS:
        api.upgrade(settings, revision)
        diff = migrate_util.schema_diff(db_url, revision)
        if diff:
            failures[revision] = diff
    assert failures == {}
