"""Where definitions come from.

- the actions this package ships (``mistral_db_flows/data/actions``);
- stevedore namespace ``mistral.preinstalled_workflows``, the one Mistral
  itself reads (``mistral-extra`` registers there): each entry point is a
  callable returning a list of workflow YAML paths;
- stevedore namespace ``mistral_db_flows.definitions``, ours: each entry
  point is a callable returning ``{"actions": [paths], "workflows":
  [paths]}`` (either key may be missing);
- sources handed in by the caller.

A plugin that cannot be imported, raises, or returns something else is
an error, never skipped: its workflows would look deleted.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Iterable

from mistral_db_flows import exceptions
from mistral_db_flows.populate import spec

MISTRAL_WORKFLOWS = "mistral.preinstalled_workflows"
DEFINITIONS = "mistral_db_flows.definitions"

DATA_DIR = pathlib.Path(__file__).resolve().parent.parent / "data"


@dataclasses.dataclass(frozen=True)
class Source:
    """One definition file: ``kind`` is spec.ACTION or spec.WORKFLOW.

    ``origin`` says who contributed it (``package``, ``namespace:name``,
    ``caller``), for messages.
    """

    kind: str
    path: str
    origin: str = "caller"

    def read(self) -> str:
        try:
            # Bytes, then UTF-8: the stored text must be the file as is,
            # line endings included.
            return pathlib.Path(self.path).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise exceptions.DefinitionError(
                self.path, "cannot read the file (from %s): %s"
                % (self.origin, exc)) from exc


def shipped(kinds: Iterable[str]) -> list[Source]:
    """The definition files packaged with mistral_db_flows."""
    result = []
    if spec.ACTION in kinds:
        for path in sorted((DATA_DIR / "actions").glob("*.yaml")):
            result.append(Source(spec.ACTION, str(path), "package"))
    return result


def plugins(kinds: Iterable[str],
            called: list[str] | None = None) -> list[Source]:
    """Files yielded by the installed plugins, in a stable order;
    ``called`` gets each plugin's ``namespace:name``, also of one that
    yields no file."""
    kinds = set(kinds)
    result = []
    called = [] if called is None else called
    if spec.WORKFLOW in kinds:
        for name, value in _call_all(MISTRAL_WORKFLOWS):
            origin = "%s:%s" % (MISTRAL_WORKFLOWS, name)
            called.append(origin)
            for path in _paths(value, MISTRAL_WORKFLOWS, name):
                result.append(Source(spec.WORKFLOW, path, origin))
    if kinds:
        for name, value in _call_all(DEFINITIONS):
            origin = "%s:%s" % (DEFINITIONS, name)
            called.append(origin)
            if not isinstance(value, dict) or not set(value) <= {
                    "actions", "workflows"}:
                raise exceptions.SourceError(
                    DEFINITIONS, name, "expected a mapping with keys "
                    "'actions' and/or 'workflows', got %r" % (value,))
            for key, kind in (("actions", spec.ACTION),
                              ("workflows", spec.WORKFLOW)):
                if kind in kinds:
                    for path in _paths(value.get(key, []), DEFINITIONS,
                                       name):
                        result.append(Source(kind, path, origin))
    return result


def _call_all(namespace: str) -> list[tuple[str, Any]]:
    from stevedore import extension

    failures: list[tuple[str, Exception]] = []

    def on_failure(manager, entry_point, exc):
        failures.append((entry_point.name, exc))

    manager = extension.ExtensionManager(
        namespace, invoke_on_load=False,
        on_load_failure_callback=on_failure)
    if failures:
        name, exc = failures[0]
        raise exceptions.SourceError(namespace, name,
                                     "cannot be loaded: %s" % (exc,))
    result = []
    for ext in sorted(manager.extensions, key=lambda e: e.name):
        value = ext.plugin
        if callable(value):
            try:
                value = value()
            except Exception as exc:
                raise exceptions.SourceError(namespace, ext.name,
                                             "failed: %s" % (exc,)) from exc
        result.append((ext.name, value))
    return result


def _paths(value: Any, namespace: str, name: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(
            value, (list, tuple)):
        raise exceptions.SourceError(namespace, name, "expected a list of "
                                     "file paths, got %r" % (value,))
    for path in value:
        if not isinstance(path, (str, os.PathLike)):
            raise exceptions.SourceError(namespace, name,
                                         "%r is not a file path" % (path,))
    return [os.fspath(path) for path in value]
