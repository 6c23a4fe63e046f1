"""Checks every run makes before anything is changed or copied.

They need no database (the backup, the lock's first write and every
step come after them), so a failure here leaves everything as it was
and has nothing to restore:

* every configured task list (``[db_manage] <operation>_tasks``, all of
  them) names installed plugins: a misspelled name fails the run that
  finds the database at head too, not only the next real upgrade;
* the operation's own plugins import;
* a run with a populate step reads and validates every definition
  source (``mistral.preinstalled_workflows`` plugins included) first;
  what it read is handed to the run's steps (the run reads its sources
  once).
"""
from __future__ import annotations

from typing import Any

from mistral_db_flows import conf
from mistral_db_flows import exceptions
from mistral_db_flows import plugins

# Task names whose step reads definition sources, and the kinds read.
_POPULATE_STEPS = {"populate": ("action", "workflow"),
                   "populate_actions": ("action",)}


def check(operation: str, settings: conf.Settings) -> Any:
    """Raise (PluginError, PopulateError...) if the run cannot succeed
    for a reason found without touching the database; the definition
    sources read (a ``populate.Loaded``) when the run populates, else
    None."""
    names = settings.task_names(operation) if operation in conf.OPERATIONS \
        else []
    # The operation's own plugins are imported; the other task lists
    # only need their names to be installed.
    try:
        plugins.load(names)
    except exceptions.PluginError as exc:
        raise exceptions.PluginError(
            exc.name, "listed in [%s] %s_tasks: %s"
            % (conf.GROUP, operation, exc.reason), exc.namespace) from exc
    check_task_lists(settings, skip=operation)
    kinds = sorted({kind for name in names
                    for kind in _POPULATE_STEPS.get(name, ())})
    if kinds:
        from mistral_db_flows import populate

        return populate.read(kinds)
    return None


def check_task_lists(settings: conf.Settings, skip: str | None = None
                     ) -> None:
    """Every name of every operation's task list (but ``skip``'s) is an
    installed task plugin (names only: nothing is imported)."""
    installed = plugins.installed_names()
    for operation in conf.OPERATIONS:
        if operation == skip:
            continue
        missing = [name for name in settings.task_names(operation)
                   if name not in installed]
        if missing:
            raise exceptions.PluginError(
                ", ".join(missing), "listed in [%s] %s_tasks, but no such "
                "task plugin is installed (install the package providing "
                "it, or fix the task list)" % (conf.GROUP, operation),
                plugins.NAMESPACE)
