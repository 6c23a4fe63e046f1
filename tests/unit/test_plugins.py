"""Loading task plugins by name through stevedore, without a database.

Fake packages are real ones: a ``*.dist-info`` folder with an
``entry_points.txt`` and a module, put on ``sys.path`` for one test, so
loading goes through stevedore and importlib.metadata as in production.
"""
from __future__ import annotations

import textwrap

import pytest
from stevedore import extension

from mistral_db_flows import exceptions
from mistral_db_flows import flows
from mistral_db_flows import plugins

BUILTIN = ("backup", "check_branches", "migrate", "stamp", "populate",
           "populate_actions", "verify")


@pytest.fixture(autouse=True)
def fresh_entry_points(monkeypatch):
    """stevedore caches entry points per namespace for the process."""
    monkeypatch.setattr(extension.ExtensionManager, "ENTRY_POINT_CACHE", {})


def fake_package(root, dist: str, module: str, entry_points: dict,
                 source: str = "") -> None:
    """Install (on ``root``) a package declaring our task entry points."""
    info = root / ("%s-1.0.dist-info" % dist)
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % dist)
    lines = ["[%s]" % plugins.NAMESPACE]
    lines += ["%s = %s" % item for item in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (root / ("%s.py" % module)).write_text(textwrap.dedent(source))


TASK_SOURCE = """
    from taskflow import task

    class Mine(task.Task):
        def execute(self):
            return {"mine": True}

    def factory(ctx):
        return [Mine("verify")]

    def other(ctx):
        return [Mine("other_task")]
    """


def test_every_builtin_task_is_registered_and_loads():
    """The installed entry points provide all our tasks, in asked order."""
    loaded = plugins.load(list(reversed(BUILTIN)))
    assert [name for name, _ in loaded] == list(reversed(BUILTIN))
    assert all(callable(factory) for _, factory in loaded)
    assert all(factory.__module__.startswith(plugins.BUILTIN_MODULE)
               for _, factory in loaded)


def test_order_is_the_configured_order():
    """The flow order is the list order, not the entry point order."""
    names = ["verify", "backup", "check_branches"]
    assert [n for n, _ in plugins.load(names)] == names


def test_missing_plugin_is_an_error():
    """A name nobody provides stops the run; it is never skipped."""
    with pytest.raises(exceptions.PluginError) as info:
        plugins.load(["backup", "no_such_task"])
    assert info.value.name == "no_such_task"
    assert info.value.exit_code == 2
    assert "is installed" in str(info.value)


def test_listing_a_plugin_twice_is_an_error():
    """Two tasks of one name cannot be in one flow."""
    with pytest.raises(exceptions.PluginError) as info:
        plugins.load(["verify", "backup", "verify"])
    assert "more than once" in str(info.value)


def test_a_plugin_that_fails_to_load_is_an_error(tmp_path, monkeypatch):
    """An entry point whose module does not import is an error."""
    fake_package(tmp_path, "broken_tasks", "broken_mdf_tasks",
                 {"broken": "broken_mdf_tasks:factory"},
                 "import no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(exceptions.PluginError) as info:
        plugins.load(["backup", "broken"])
    assert info.value.name == "broken"
    assert "no_such_module_anywhere" in str(info.value)


def test_a_package_adds_a_task_by_name(tmp_path, monkeypatch):
    """A new name from another package can be listed like ours."""
    fake_package(tmp_path, "extra_tasks", "extra_mdf_tasks",
                 {"other": "extra_mdf_tasks:other"}, TASK_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = dict(plugins.load(["backup", "other"]))
    assert loaded["other"].__module__ == "extra_mdf_tasks"


def test_a_package_replaces_a_builtin_task_by_name(tmp_path, monkeypatch):
    """Registering ``verify`` elsewhere replaces ours in every flow."""
    fake_package(tmp_path, "my_verify", "my_mdf_verify",
                 {"verify": "my_mdf_verify:factory"}, TASK_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = dict(plugins.load(["backup", "verify"]))
    assert loaded["verify"].__module__ == "my_mdf_verify"
    assert loaded["backup"].__module__ == "mistral_db_flows.tasks.backup"
    plan = flows.Plan("001", "001")
    ctx = flows.BuildContext("verify", "sqlite://", plan, head="001")
    flow = flows.build(ctx, ["verify"])
    outcome = flows.run(flow)
    assert outcome.steps[0].detail == {"mine": True}


def test_two_packages_replacing_one_task_is_an_error(tmp_path,
                                                     monkeypatch):
    """Two replacements for one name: refuse to guess."""
    fake_package(tmp_path, "verify_one", "mdf_verify_one",
                 {"verify": "mdf_verify_one:factory"}, TASK_SOURCE)
    fake_package(tmp_path, "verify_two", "mdf_verify_two",
                 {"verify": "mdf_verify_two:factory"}, TASK_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(exceptions.PluginError) as info:
        plugins.load(["verify"])
    assert "several packages" in str(info.value)
    assert "mdf_verify_one" in str(info.value)


class FakeEntryPoint:
    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value


def ext(name: str, value: str, plugin) -> extension.Extension:
    return extension.Extension(name, FakeEntryPoint(name, value), plugin,
                               None)


def test_replacement_through_a_test_extension_manager():
    """A ready-made stevedore manager can stand in for entry points."""
    def ours(ctx):
        return []

    def theirs(ctx):
        return []

    manager = extension.ExtensionManager.make_test_instance(
        [ext("verify", "mistral_db_flows.tasks.verify:factory", ours),
         ext("verify", "corp.tasks:verify", theirs),
         ext("backup", "mistral_db_flows.tasks.backup:factory", ours)],
        namespace=plugins.NAMESPACE)
    loaded = plugins.load(["verify", "backup"], manager=manager)
    assert loaded == [("verify", theirs), ("backup", ours)]


def test_conflict_between_builtins_takes_any():
    """The same built-in found twice (stale metadata) is not a conflict."""
    a = ext("verify", "mistral_db_flows.tasks.verify:factory", min)
    b = ext("verify", "mistral_db_flows.tasks.verify:factory", max)
    assert plugins.resolve_conflict(plugins.NAMESPACE, "verify",
                                    [a, b]) is b


def test_an_uncallable_entry_point_is_an_error():
    """An entry point must be a factory."""
    manager = extension.ExtensionManager.make_test_instance(
        [ext("verify", "corp:verify", "not callable")])
    with pytest.raises(exceptions.PluginError) as info:
        plugins.load(["verify"], manager=manager)
    assert "not callable" in str(info.value)


def test_no_names_loads_nothing():
    """An empty task list is allowed (an operator's choice)."""
    assert plugins.load([]) == []
