"""Checks that need no database run before anything is changed or copied.

A misspelled task plugin fails every run, also one that finds the
database at head (rc 2); a definition source that cannot be loaded
fails populate (rc 13) before the lock's run is recorded: no backup, no
run in the logbook, nothing restored, the database as it was.
"""
from __future__ import annotations

import pytest

from tests import dbs
from tests.functional import safety_util as su

EXIT_USAGE = 2
EXIT_DEFINITIONS = 13


def _params():
    return [pytest.param(b, marks=list(su.BACKEND_MARKS.get(b, ())) + (
        [] if b == "sqlite" else [pytest.mark.slow]), id=b)
        for b in dbs.BACKENDS]


def _backup_files(tool: su.Tool) -> list[str]:
    folder = tool.state_dir / "backups"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() \
        else []


@pytest.mark.parametrize("backend", _params())
@pytest.mark.parametrize("option", ["upgrade_tasks", "populate_tasks"])
def test_misspelled_plugin_fails_at_head(backend, option, make_db,
                                         tmp_path):
    """At head `upgrade head` has nothing to do, yet a misspelled name
    in any task list is refused with rc 2 naming the option."""
    url = make_db(backend)
    su.prepare(url, "045")
    tool = su.Tool(url, tmp_path, **{
        option: "backup, chek_branches, verify"})
    done = tool.call("upgrade", "head")
    assert done.code == EXIT_USAGE, done
    assert "chek_branches" in done.error_line()
    assert option in done.error_line()
    assert su.version(url) == "045"


@pytest.mark.parametrize("backend", _params())
@pytest.mark.parametrize("mode", ["import", "call", "value"])
def test_broken_definition_source_changes_nothing(backend, mode, make_db,
                                                  tmp_path, monkeypatch):
    """A definition plugin that cannot be imported (or fails, or returns
    nonsense) fails populate before anything is copied or recorded:
    rc 13, no backup file, no run left to resume, rows as before."""
    url = make_db(backend)
    su.prepare(url, "045")
    monkeypatch.setenv("MDF_TEST_BROKEN_PLUGIN", mode)
    tool = su.Tool(url, tmp_path)
    before = su.state(url)
    done = tool.call("populate")
    assert done.code == EXIT_DEFINITIONS, done
    assert "mdf_test_broken" in done.error_line()
    assert su.state_diff(su.state(url), before) == []
    assert _backup_files(tool) == []
    status = tool.call("status")
    assert status.doc["interrupted"] is None, status


@pytest.mark.parametrize("operation", ["populate", "populate_actions"])
def test_a_run_reads_its_definition_sources_once(operation, make_db,
                                                 tmp_path, monkeypatch):
    """The preflight reads and validates the sources before the lock;
    the populate and verify steps use what it read (no second read),
    and the rows written are the same."""
    from mistral_db_flows import populate

    url = make_db("sqlite")
    su.prepare(url, "045")
    reads = []
    real = populate.load
    monkeypatch.setattr(populate, "load",
                        lambda *a, **k: reads.append(a) or real(*a, **k))
    done = su.Tool(url, tmp_path).call(operation)
    assert done.code == 0, done
    assert len(reads) == 1, reads
    assert done.run["steps"][-1]["detail"]["rows"] == "in place"
