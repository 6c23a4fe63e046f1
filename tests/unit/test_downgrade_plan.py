"""``downgrade`` without a database: the revert plan of each revision
(its ``upgrade()`` run offline, each ``ddl`` operation turned into its
inverse) and the downgrade target's planning."""
from __future__ import annotations

import io

import pytest

from mistral_db_flows import api
from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import migration
from mistral_db_flows import revisions
from mistral_db_flows.revert import parent_of
from mistral_db_flows.revert import plan

PG = "postgresql+psycopg2://nobody@127.0.0.1:1/none"
MYSQL = "mysql+pymysql://nobody@127.0.0.1:1/none"
SQLITE = "sqlite:////nonexistent/dir/mistral.sqlite"


def _plan(url: str, revision: str) -> plan.Planner:
    return migration.plan_revert(url, revision, parent_of(revision))


def test_created_tables_are_dropped_newest_first():
    """040 creates two tables with their indexes: the inverse drops the
    indexes and tables in the reverse order of their creation."""
    planner = _plan(PG, "040")
    assert planner.needs is None
    assert planner.newest_first() == [
        {"op": "drop_index", "name": "dynamic_action_definitions_scope",
         "table": "dynamic_action_definitions"},
        {"op": "drop_index",
         "name": "dynamic_action_definitions_project_id",
         "table": "dynamic_action_definitions"},
        {"op": "drop_table", "table": "dynamic_action_definitions"},
        {"op": "drop_index", "name": "code_sources_scope",
         "table": "code_sources"},
        {"op": "drop_index", "name": "code_sources_project_id",
         "table": "code_sources"},
        {"op": "drop_table", "table": "code_sources"}]


def test_widened_column_goes_back_to_its_type_and_nullability():
    """041 widens a description to TEXT: its inverse narrows it back to
    VARCHAR(255), NULL as before (from ``existing_nullable``)."""
    assert _plan(PG, "041").newest_first() == [
        {"op": "alter_column", "table": "workflow_executions_v2",
         "column": "description", "type": "VARCHAR(255)",
         "nullable": True}]
    # 014 only relaxes NOT NULL: the inverse puts it back.
    relaxed = [i for i in _plan(PG, "014").inverses
               if i["op"] == "alter_column"]
    assert {(i["table"], i["nullable"]) for i in relaxed} == {
        ("event_triggers_v2", False), ("resource_members_v2", False)}


@pytest.mark.parametrize("url,revision,reason", [
    (PG, "002", "drops table tasks"),
    (PG, "020", "rewrites or deletes rows of task_executions_v2"),
    (PG, "038", "rewrites or deletes rows of delayed_calls_v2"),
    (PG, "044", "drops table mistral_metrics"),
    (MYSQL, "019", "drops unique constraint unique_key of "
                   "delayed_calls_v2"),
    (SQLITE, "029", "rewrites or deletes rows of workbooks_v2"),
])
def test_revisions_that_destroy_data_need_kept_data(url, revision, reason):
    """A revision that drops a table or column, rewrites or deletes
    rows, or drops a constraint whose shape it does not name, needs the
    revert data its run kept, and says why."""
    assert _plan(url, revision).needs == reason


def test_every_other_revision_is_schema_only_on_every_backend():
    """The revisions a downgrade can always undo (a list that changes
    only when a revision does: then look at why)."""
    needing = {}
    for url in (PG, MYSQL, SQLITE):
        needing[url] = sorted(
            rev for rev in revisions.graph().order
            if _plan(url, rev).needs is not None)
    assert needing[PG] == needing[SQLITE] == [
        "002", "009", "019", "020", "022", "029", "035", "036", "037",
        "038", "044"]
    assert needing[MYSQL] == ["002", "014", "019", "020", "022", "029",
                              "037", "038", "044"]


def test_rows_inserted_into_a_table_it_created_need_nothing():
    """042 creates mistral_metrics and inserts its first row: dropping
    the table undoes both."""
    planner = _plan(PG, "042")
    assert planner.needs is None
    assert planner.newest_first() == [{"op": "drop_table",
                                       "table": "mistral_metrics"}]


@pytest.mark.parametrize("current,target,pending,end", [
    (["045"], "043", ("045", "044"), "043"),
    (["045"], "-1", ("045",), "044"),
    (["003"], "base", ("003", "002", "001"), None),
    (["003"], "-3", ("003", "002", "001"), None),
    (["040"], "040", (), "040"),
])
def test_downgrade_targets(current, target, pending, end):
    """An older id, -N or base: the revisions to undo, newest first."""
    planned = revisions.plan_downgrade(revisions.graph(), current, target)
    assert (planned.pending, planned.target) == (pending, end)


@pytest.mark.parametrize("current,target,needle", [
    (["040"], "041", "is not older"),
    (["003"], "-4", "goes below base"),
    (["040"], "head", "older revision id"),
    (["040"], "030:020", "older revision id"),
    (["040"], "", "needs a target"),
])
def test_bad_downgrade_targets(current, target, needle):
    with pytest.raises(exceptions.BadTarget, match=needle):
        revisions.plan_downgrade(revisions.graph(), current, target)


def test_sql_of_a_range_that_destroys_data_is_refused_unprinted():
    """``--sql`` over 044 (drops a table) cannot be written: the kept
    data is in the database. Exit 15, and nothing was written."""
    out = io.StringIO()
    with pytest.raises(exceptions.RevertDataMissing) as caught:
        api.downgrade(conf.Settings(database_url=PG), "045:040", sql=True,
                      output=out)
    assert caught.value.revision == "044" and caught.value.offline
    assert caught.value.exit_code == 15
    assert "run `downgrade 040` online" in str(caught.value)
    assert out.getvalue() == ""


def test_sql_of_a_schema_only_range():
    """``--sql 043:039``: each revision's inverse, then its version."""
    out = io.StringIO()
    run = api.downgrade(conf.Settings(database_url=PG), "043:039",
                        sql=True, output=out)
    assert (run.state, run.start_revision, run.end_revision) == (
        "offline", "043", "039")
    text = out.getvalue()
    order = [text.index("-- undo %s" % rev)
             for rev in ("043", "042", "041", "040")]
    assert order == sorted(order)
    assert "ALTER TABLE workflow_definitions_v2 DROP COLUMN checksum" in text
    assert text.rstrip().endswith(
        "UPDATE alembic_version SET version_num = '039' "
        "WHERE version_num = '040';")


def test_status_names_the_kept_revert_data():
    """status: kept data is a line of its own, not an upgrade to do."""
    from mistral_db_flows import results

    status = results.Status(current="045", head="045", pending=[],
                            revert_kept=["045", "044", "001"])
    assert not status.upgrade_needed
    assert "revert data kept for 001..045 (`downgrade` uses it, " \
        "`drop_revert_data` drops it)" in status.lines()
