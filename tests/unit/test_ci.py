"""A clone runs its tests the way the README says, and CI runs the same.

The README's test commands are what ``.ci/run`` runs; everything the tests
read is inside the repository; the parallel run set in ``setup.cfg`` comes
with the ``test`` extra that the README installs.
"""
from __future__ import annotations

import configparser
import pathlib
import shlex

import pytest

from tests import conftest
from tests import reference

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _readme_command(fragment: str) -> str:
    """The one command line of the README's code blocks holding
    ``fragment``."""
    lines = [line.strip() for line in
             (ROOT / "README.md").read_text().splitlines()
             if line.startswith("    ") and fragment in line]
    assert len(lines) == 1, lines
    return lines[0]


def _ci_lines() -> list[str]:
    return [line.strip() for line in
            (ROOT / ".ci" / "run").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _pip_install_args(command: str) -> list[str]:
    words = shlex.split(command)
    args = words[words.index("install") + 1:]
    return [a for a in args if a != "-q"]


def test_ci_installs_what_the_readme_installs():
    """The README's test install is one line that installs every test
    plugin package, and CI installs exactly the same (quietly)."""
    install, test = _readme_command("&& python3 -m pytest").split(" && ")
    assert test == "python3 -m pytest"
    readme = _pip_install_args(install)
    plugins = sorted("tests/plugins/%s" % p.name
                     for p in (ROOT / "tests" / "plugins").iterdir()
                     if (p / "pyproject.toml").exists())
    assert plugins and sorted(
        a for a in readme if a.startswith("tests/plugins/")) == plugins
    ci = [_pip_install_args(line) for line in _ci_lines()
          if line.startswith("python3 -m pip install")
          and "--upgrade" not in line]
    assert ci == [readme]


def test_ci_runs_the_readme_full_matrix_command():
    """The full matrix is the README's command, word for word."""
    command = _readme_command('-m "slow or not slow"')
    assert command in _ci_lines()


def test_parallel_run_comes_with_the_test_extra():
    """``-n`` and ``--dist worksteal`` in addopts need pytest-xdist 3.2
    or later, which the test extra asks for."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    addopts = shlex.split(cfg["tool:pytest"]["addopts"])
    assert "-n" in addopts and "not slow" in addopts
    assert addopts[addopts.index("--dist") + 1] == "worksteal"
    extra = cfg["options.extras_require"]["test"].split()
    assert "pytest-xdist>=3.2" in extra


def test_reference_data_is_in_the_repository():
    """The upstream facts are read from the clone itself, and every
    revision's dump is there for both servers."""
    assert ROOT in reference.REFERENCE_DIR.parents
    assert (reference.REFERENCE_DIR / "README.md").exists()
    for dialect, name in (("pg", "postgresql"), ("mysql", "mysql")):
        for revision in reference.REVISIONS:
            dump = reference.schema(dialect, revision)
            assert dump["dialect"] == name and dump["tables"], revision


def test_every_package_of_the_source_tree_is_shipped():
    """A plain ``pip install .`` carries only the packages setup.cfg lists
    (the editable install of the tests sees them all): a new sub-package
    left out breaks operators' installs, not the quick subset."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    source = ROOT / "mistral_db_flows"
    found = {"mistral_db_flows"} | {
        "mistral_db_flows." + ".".join(p.parent.relative_to(source).parts)
        for p in source.rglob("__init__.py") if p.parent != source}
    missing = found - listed
    assert not missing, "add to setup.cfg [options] packages: %s" % (
        ", ".join(sorted(missing)))


class _Item:
    """What the quick-subset rule reads of a collected test."""

    def __init__(self, *marks: str) -> None:
        self.nodeid = "tests/functional/test_x.py::test_x"
        self.marks = set(marks)

    def get_closest_marker(self, name: str):
        return name if name in self.marks else None

    def add_marker(self, mark) -> None:
        self.marks.add(mark.name)


def test_server_tests_are_slow_unless_smoke():
    """Issue 11's time budget: the quick subset keeps every SQLite test
    but of the PostgreSQL/MariaDB tests only those marked smoke; CI
    still selects all of them (``slow or not slow``)."""
    items = {"sqlite": _Item(), "pg": _Item("postgresql"),
             "mysql": _Item("mysql"), "pg smoke": _Item("postgresql", "smoke"),
             "mysql smoke": _Item("mysql", "smoke")}
    conftest.pytest_collection_modifyitems(list(items.values()))
    slow = sorted(name for name, item in items.items()
                  if "slow" in item.marks)
    assert slow == ["mysql", "pg"]
    # backend_params: a server in ``quick`` is a smoke test.
    marks = {p.values[0]: {m.name for m in p.marks}
             for p in conftest.backend_params(["sqlite", "postgresql"])}
    assert marks == {"sqlite": set(), "postgresql": {"postgresql", "smoke"},
                     "mysql": {"mysql", "slow"}}
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "smoke:" in cfg["tool:pytest"]["markers"]


def test_a_server_test_without_its_mark_fails(monkeypatch):
    """A test that asks for a server database without the server's mark
    would slip into the quick subset unnoticed: it fails, naming the
    mark to add."""
    monkeypatch.setattr(conftest, "_current", [_Item("postgresql")])
    with pytest.raises(pytest.fail.Exception) as failed:
        conftest._require("mysql")
    assert "@pytest.mark.mysql" in str(failed.value)
