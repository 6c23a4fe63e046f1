"""The text of results, as an embedder gets it without the CLI."""
from __future__ import annotations

from mistral_db_flows import results


def test_branch_point_lines_name_each_child():
    """branches: the revision's line, then one arrow per child, aligned
    under the revision id; history prints the line alone."""
    info = results.RevisionInfo("020", "019", False, "Split.",
                                children=["021", "021b"])
    assert info.lines() == ["019 -> 020 (branchpoint), Split."]
    assert info.lines(children=True) == [
        "019 -> 020 (branchpoint), Split.", "    -> 021", "    -> 021b"]


def test_current_verbose_lines():
    """current --verbose: URL, then each revision, parent, description;
    an unversioned database says so."""
    history = [results.RevisionInfo("031", "030", False,
                                    "Add columns\n  to tasks"),
               results.RevisionInfo("001", None, False, "Kilo")]
    current = results.Current(["031"], "045", False)
    assert current.verbose_lines("sqlite:///m.db", history) == [
        "Current revision(s) for sqlite:///m.db:", "Rev: 031",
        "Parent: 030", "", "    Add columns", "    to tasks"]
    assert results.Current(["001"], "001", True).verbose_lines(
        "u", history)[1:3] == ["Rev: 001 (head)", "Parent: <base>"]
    assert results.Current([], "045", False).verbose_lines("u", []) == [
        "Current revision(s) for u:",
        "(none: the database has no version recorded)"]


def test_status_and_check_lines():
    """status at head says up to date; check_migration one OK line."""
    assert results.Status("045", "045", []).lines() == [
        "current: 045", "head: 045", "pending: (none)",
        "interrupted run: no", "up to date"]
    assert results.Status(None, "045", ["001"]).lines()[0] == \
        "current: (none)"
    assert results.Check("045", "001", 45).lines() == [
        "OK: 45 revisions in one unbroken chain from 001 to the single "
        "head 045"]


def test_run_summary_line():
    """A run's last line: state, revisions moved, steps, backup."""
    run = results.Run("upgrade", results.Outcome.UPGRADED, None, "002",
                      [results.Step("migrate_001", "done", 0.25),
                       results.Step("migrate_002", "done", None)],
                      backup="/b/x.sqlite")
    assert run.lines() == ["upgrade: upgraded <base> -> 002, 2 steps in "
                           "0.2 s, backup: /b/x.sqlite"]
    assert results.Run("stamp", results.Outcome.UNCHANGED, "045",
                       "045").lines() == ["stamp: unchanged at 045"]


def test_status_names_the_interrupted_runs_backup():
    """An interrupted run's backup is named in status's text."""
    run = {"operation": "upgrade", "target": "045", "step": "migrate_013",
           "state": "running", "in_progress": False,
           "backup": "/b/m-1-2-upgrade.sqlite"}
    lines = results.Status("012", "045", ["013"], interrupted=run,
                           database="sqlite:////m.sqlite").lines()
    assert lines[0] == "database: sqlite:////m.sqlite"
    assert "its backup: /b/m-1-2-upgrade.sqlite" in lines
