"""Task plugins: stevedore entry points in our namespace, loaded by name.

Each entry point is a factory ``factory(ctx: flows.BuildContext) ->
list[taskflow Atom]``. The names come from configuration, in order; a
name that is missing or fails to load is an error, never skipped (a
silently missing ``backup`` or ``verify`` would be worse than no run).

Another package adds a task by registering a new name and listing it in
``[db_manage] <operation>_tasks``, or replaces one of ours by registering
an entry point with the same name: a single third-party entry point wins
over the built-in one; two third-party ones for a name are an error.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from mistral_db_flows import exceptions

NAMESPACE = "mistral_db_flows.tasks"
# Entry points whose target lives here are ours (overridable).
BUILTIN_MODULE = "mistral_db_flows.tasks."

LOG = logging.getLogger(__name__)

Factory = Callable[[Any], Any]


def is_builtin(extension: Any) -> bool:
    value = getattr(extension.entry_point, "value", "") or ""
    return value.startswith(BUILTIN_MODULE)


def _describe(extension: Any) -> str:
    return getattr(extension.entry_point, "value", None) or repr(
        extension.plugin)


def resolve_conflict(namespace: str, name: str,
                     extensions: list[Any]) -> Any:
    """Pick among entry points sharing a name (stevedore hook)."""
    others = [e for e in extensions if not is_builtin(e)]
    if len(others) == 1:
        LOG.info("task %r: %s replaces the built-in task", name,
                 _describe(others[0]))
        return others[0]
    if not others:
        # The same built-in twice (e.g. stale egg-info): any is fine.
        return extensions[-1]
    raise exceptions.PluginError(
        name, "several packages provide it (%s); uninstall all but one"
        % ", ".join(_describe(e) for e in others), namespace)


def _manager(names: Sequence[str], namespace: str):
    from stevedore import named

    def on_load_failure(manager, entrypoint, exc) -> None:
        raise exceptions.PluginError(
            entrypoint.name, "failed to load %s: %s: %s"
            % (entrypoint.value, type(exc).__name__, exc),
            namespace) from exc

    def on_missing(missing) -> None:
        raise exceptions.PluginError(
            ", ".join(sorted(missing)),
            "no such task plugin is installed (install the package "
            "providing it, or fix the task list)", namespace)

    # Not name_order: stevedore then resolves same-name conflicts only
    # between neighbouring entry points; load() orders and resolves.
    return named.NamedExtensionManager(
        namespace, names=list(names), invoke_on_load=False,
        on_load_failure_callback=on_load_failure,
        on_missing_entrypoints_callback=on_missing)


def installed_names(namespace: str = NAMESPACE) -> set[str]:
    """The names of the installed entry points (nothing imported)."""
    from importlib import metadata

    return {ep.name for ep in metadata.entry_points(group=namespace)}


def load(names: Sequence[str], namespace: str = NAMESPACE,
         manager: Any = None) -> list[tuple[str, Factory]]:
    """The factories for ``names``, in that order.

    ``manager`` (a stevedore manager, e.g. ``make_test_instance``) is for
    tests; by default the installed entry points are read.
    """
    names = list(names)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise exceptions.PluginError(
            ", ".join(dupes), "listed more than once in the task list",
            namespace)
    if not names:
        return []
    if manager is None:
        manager = _manager(names, namespace)
    found: dict[str, list[Any]] = {}
    for extension in manager.extensions:
        found.setdefault(extension.name, []).append(extension)
    out = []
    for name in names:
        candidates = found.get(name)
        if not candidates:
            raise exceptions.PluginError(
                name, "no such task plugin is installed", namespace)
        extension = (candidates[0] if len(candidates) == 1
                     else resolve_conflict(namespace, name, candidates))
        if not callable(extension.plugin):
            raise exceptions.PluginError(
                name, "entry point %s is not callable"
                % _describe(extension), namespace)
        out.append((name, extension.plugin))
    return out
