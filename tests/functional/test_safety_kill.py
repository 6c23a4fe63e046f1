"""Runs killed with SIGKILL resume where they died and finish the job.

Each case starts ``mistral-db-manage upgrade head`` in a subprocess with
the fault plugins (tests/plugins/mdf_fault), which SIGKILL the process
at a step boundary or inside a step (after the n-th changing statement,
or while the backup is written), on a database with seeded rows in
every table. The same command is then run again with the default task
list and no fault: it must resume the interrupted run (not start a new
one), not re-run the steps that had finished, and end with the
reference schema at head and exactly the rows an uninterrupted upgrade
gives.
"""
from __future__ import annotations

import os
import signal

import pytest

from tests import migrate_util
from tests.functional import safety_util as su

HEAD = su.HEAD


@pytest.fixture(autouse=True)
def _fault_plugins():
    su.require_fault_plugins()


Kill = su.Case

KILLS = [
    Kill("backup-inside", "008", "inside:backup:kill", "backup"),
    Kill("backup-after", "008", "after:backup:kill", "backup"),
    Kill("009-before", "008", "before:migrate_009:kill", "migrate_009"),
    Kill("009-inside", "008", "inside:migrate_009:kill:2", "migrate_009"),
    Kill("013-inside-3", "008", "inside:migrate_013:kill:3", "migrate_013"),
    Kill("013-inside-20", "008", "inside:migrate_013:kill:20",
         "migrate_013"),
    Kill("013-after", "008", "after:migrate_013:kill", "migrate_013",
         work_done=True),
    # 020 adds task_executions_v2.type, then types every seeded row.
    Kill("020-inside-1", "019", "inside:migrate_020:kill:1", "migrate_020"),
    Kill("020-inside-2", "019", "inside:migrate_020:kill:2", "migrate_020"),
    # 022: four new columns, a unique key rebuilt, three UPDATEs.
    Kill("022-inside-6", "019", "inside:migrate_022:kill:6", "migrate_022"),
    Kill("038-inside", "019", "inside:migrate_038:kill:1", "migrate_038"),
    Kill("verify-before", "019", "before:verify:kill", "verify"),
    Kill("verify-after", "019", "after:verify:kill", "verify",
         work_done=True),
]
# Always run (the rest is @slow): one kill inside a DDL-heavy step.
QUICK = {("sqlite", "013-inside-3"), ("postgresql", "013-inside-3")}


def _partial_backups(tool: su.Tool) -> list[str]:
    folder = tool.state_dir / "backups"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.name.endswith(".partial"))


@pytest.mark.parametrize("backend,case", su.matrix(KILLS, QUICK))
def test_killed_upgrade_resumes_to_head(backend, case, make_db, tmp_path):
    """SIGKILL at ``case``; the same command again resumes and finishes:
    head schema, every seeded row as an uninterrupted upgrade leaves it,
    steps that had finished not run again."""
    url = make_db(backend)
    su.prepare(url, case.start)
    tool = su.Tool(url, tmp_path)

    killed = tool.run("upgrade", "head", fault=case.fault)
    assert killed.code == -signal.SIGKILL, killed
    assert len(tool.faults_fired()) == 1, tool.faults_fired()

    status = tool.run("status")
    assert status.code == 10, status
    interrupted = status.doc["interrupted"]
    assert interrupted["operation"] == "upgrade"
    assert interrupted["target"] == HEAD
    assert interrupted["step"] == case.step, interrupted

    resumed = tool.run("upgrade", "head")
    assert resumed.code == 0, resumed
    doc = resumed.doc
    assert (doc["state"], doc["resumed"]) == ("upgraded", True), resumed
    assert (doc["start_revision"], doc["end_revision"]) == (case.start,
                                                            HEAD)
    names = [s["name"] for s in doc["steps"]]
    steps = resumed.steps()
    assert all(s["state"] == "done" for s in doc["steps"]), doc["steps"]
    # Finished before the kill: recorded, so not executed again (a step
    # run by this process reports what it did).
    for name in names[:names.index(case.step)]:
        assert steps[name]["detail"] is None, (name, steps[name])
    for name in names[names.index(case.step):]:
        assert steps[name]["detail"] is not None, (name, steps[name])
    if case.step.startswith("migrate_"):
        assert steps[case.step]["detail"]["applied"] is not case.work_done
    # The backup taken before the kill (or again, when the kill hit the
    # backup itself) is the run's backup.
    assert doc["backup"] and os.path.exists(doc["backup"]), doc

    assert migrate_util.schema_diff(url, HEAD) == []
    assert su.state_diff(su.state(url), su.expected_head_state(
        backend, case.start)) == []
    assert tool.run("status").code == 0
    assert _partial_backups(tool) == []


def test_kill_before_backup_of_a_new_sqlite_file(tmp_path):
    """A run on a SQLite file that does not exist yet, killed in its
    first migration, resumes (the 'no file before' backup is kept)."""
    su.require_fault_plugins()
    url = "sqlite:///%s" % (tmp_path / "new.sqlite")
    tool = su.Tool(url, tmp_path)
    killed = tool.run("upgrade", "head",
                      fault="inside:migrate_001:kill:2")
    assert killed.code == -signal.SIGKILL, killed
    resumed = tool.run("upgrade", "head")
    assert resumed.code == 0, resumed
    assert resumed.doc["resumed"] is True
    assert resumed.steps()["backup"]["detail"] is None
    assert migrate_util.schema_diff(url, HEAD) == []


@pytest.mark.slow
@pytest.mark.postgresql
def test_killed_twice_then_resumed(make_db, tmp_path):
    """Two kills in a row (the second one in the resumed run) still end
    at head with every row, as one uninterrupted upgrade."""
    url = make_db("postgresql")
    su.prepare(url, "019")
    tool = su.Tool(url, tmp_path)
    first = tool.run("upgrade", "head", fault="inside:migrate_020:kill:1")
    assert first.code == -signal.SIGKILL, first
    second = tool.run("upgrade", "head", fault="inside:migrate_022:kill:3")
    assert second.code == -signal.SIGKILL, second
    done = tool.run("upgrade", "head")
    assert done.code == 0, done
    assert done.doc["resumed"] is True
    assert done.steps()["migrate_020"]["detail"] is None
    assert su.state_diff(su.state(url), su.expected_head_state(
        "postgresql", "019")) == []
