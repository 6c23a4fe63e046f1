"""From a definition file's text to the column values Mistral stores.

Pure functions, no database. The stored shape follows what Mistral
23.0.0 writes (measured by running it, see docs/populate.md):

- ``spec`` is the definition body as JSON, in the file's key order, with
  ``name`` and ``version`` appended; in a workflow each task also gets
  ``type`` (the workflow's, default ``direct``), ``name`` and ``version``.
- an action's ``definition`` is the whole file; a workflow's is the whole
  file when the file holds one workflow, else the workflow alone dumped
  back to YAML under the file's ``version``.
- ``input`` (actions) lists the input names, a default as ``name=<JSON>``.
- ``checksum`` (workflows) is the MD5 of the stored definition.

Validation is limited to what would make Mistral refuse or store
nonsense: it must not need yaql or mistral-lib.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Callable

import yaml

ACTION = "action"
WORKFLOW = "workflow"

SCOPE = "public"
PROJECT_ID = "<default-project>"
NAMESPACE = ""

# Mistral's DSL version; the YAML may spell it as a string or a number.
VERSIONS = ("2.0", 2.0)
WORKFLOW_TYPES = ("direct", "reverse")

_LOADER_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_JSON_SCALARS = (str, int, float, bool, type(None))


@dataclasses.dataclass(frozen=True)
class Definition:
    """One action or workflow as it should be stored.

    ``columns`` holds every column populate manages (no id, no
    timestamps).
    """

    kind: str
    name: str
    path: str
    columns: dict[str, Any]


class Invalid(ValueError):
    """A problem with a file, without the file's name (added by caller)."""


class _Loader(_LOADER_BASE):  # type: ignore[misc, valid-type]
    """Safe loading that refuses a key given twice in one mapping.

    Plain YAML loading keeps the last value: a second definition or task
    with the same name would silently replace the first.
    """

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, "duplicate key %r" % (key,),
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> dict[str, Any]:
    """Parse and check a definition file: ``version`` plus bodies."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 (safe loader)
    except yaml.YAMLError as exc:
        raise Invalid("malformed YAML: %s" % _yaml_problem(exc)) from exc
    if not isinstance(doc, dict):
        raise Invalid("expected a mapping with 'version' and definitions, "
                      "found %s" % _kind_of(doc))
    if "version" not in doc:
        raise Invalid("missing required key 'version'")
    # An integer 2 equals 2.0 and is accepted like it; true equals 1.
    if doc["version"] not in VERSIONS or isinstance(doc["version"], bool):
        raise Invalid("unsupported version %r (only '2.0')"
                      % (doc["version"],))
    _check_json(doc, "")
    return doc


def actions(text: str, path: str) -> list[Definition]:
    """The ad-hoc actions defined by one file."""
    doc = load(text)
    result = []
    for name, body in _bodies(doc, ACTION, _check_action):
        spec = dict(body, name=name, version=_version(doc))
        result.append(Definition(ACTION, name, path, {
            "name": name,
            "definition": text,
            "spec": json.dumps(spec),
            "tags": json.dumps(body.get("tags") or []),
            "description": body.get("description"),
            "input": input_string(body.get("input")),
            "scope": SCOPE,
            "project_id": PROJECT_ID,
            # Mistral stores its own standard actions as non-system.
            "is_system": False,
            "namespace": NAMESPACE,
            "action_class": None,
            "attributes": None,
            "workbook_name": None,
        }))
    return result


def workflows(text: str, path: str) -> list[Definition]:
    """The workflows defined by one file, as system workflows."""
    doc = load(text)
    bodies = _bodies(doc, WORKFLOW, _check_workflow)
    result = []
    for name, body in bodies:
        spec = workflow_spec(name, body, _version(doc))
        if len(bodies) == 1:
            definition = text
        else:
            definition = yaml.dump({"version": doc["version"], name: body},
                                   Dumper=yaml.SafeDumper, sort_keys=False,
                                   default_flow_style=False)
        result.append(Definition(WORKFLOW, name, path, {
            "name": name,
            "definition": definition,
            "spec": json.dumps(spec),
            "tags": json.dumps(body.get("tags") or []),
            "scope": SCOPE,
            "project_id": PROJECT_ID,
            "is_system": True,
            "namespace": NAMESPACE,
            "workbook_name": None,
            "checksum": hashlib.md5(definition.encode("utf-8"),
                                    usedforsecurity=False).hexdigest(),
        }))
    return result


def workflow_spec(name: str, body: dict[str, Any],
                  version: str) -> dict[str, Any]:
    wf_type = body.get("type", "direct")
    spec = dict(body)
    spec["tasks"] = {
        task: dict(task_body, type=wf_type, name=task, version=version)
        for task, task_body in body["tasks"].items()}
    spec.update(name=name, version=version)
    return spec


def input_string(items: list[Any] | None) -> str | None:
    """``a, b=5, c="x"``: how Mistral lists an action's input."""
    if items is None:
        return None
    parts = []
    for item in items:
        if isinstance(item, dict):
            ((key, default),) = item.items()
            parts.append("%s=%s" % (key, json.dumps(default)))
        else:
            parts.append(item)
    return ", ".join(parts)


def _version(doc: dict[str, Any]) -> str:
    # The one version load() accepts, however the YAML spelled it.
    return VERSIONS[0]


def _bodies(doc: dict[str, Any], kind: str,
            check: Callable[[dict[str, Any]], None],
            ) -> list[tuple[str, Any]]:
    bodies = [(k, v) for k, v in doc.items() if k != "version"]
    if not bodies:
        raise Invalid("defines no %s" % kind)
    for name, body in bodies:
        if not isinstance(name, str) or not name.strip():
            raise Invalid("%s name %r is not a non-empty string"
                          % (kind, name))
        if not isinstance(body, dict):
            raise Invalid("%s %r: expected a mapping, found %s"
                          % (kind, name, _kind_of(body)))
        try:
            check(body)
        except Invalid as exc:
            raise Invalid("%s %r: %s" % (kind, name, exc)) from None
    return bodies


def _check_action(body: dict[str, Any]) -> None:
    if "base" not in body:
        raise Invalid("missing required key 'base'")
    if not isinstance(body["base"], str) or not body["base"].strip():
        raise Invalid("'base' must be a non-empty string")
    _check_optional(body, "base-input", dict, "a mapping")
    _check_optional(body, "description", str, "a string")
    _check_list(body, "tags", str)
    _check_list(body, "input", (str, dict))
    for item in body.get("input") or []:
        if isinstance(item, dict) and (
                len(item) != 1 or not isinstance(next(iter(item)), str)):
            raise Invalid("'input': %r must map one name to its default"
                          % (item,))


def _check_workflow(body: dict[str, Any]) -> None:
    if "tasks" not in body:
        raise Invalid("missing required key 'tasks'")
    tasks = body["tasks"]
    if not isinstance(tasks, dict) or not tasks:
        raise Invalid("'tasks' must be a non-empty mapping of task names "
                      "to tasks")
    for task, task_body in tasks.items():
        if not isinstance(task_body, dict):
            raise Invalid("task %r: expected a mapping, found %s"
                          % (task, _kind_of(task_body)))
    if body.get("type", "direct") not in WORKFLOW_TYPES:
        raise Invalid("'type' must be one of %s, found %r"
                      % (", ".join(WORKFLOW_TYPES), body["type"]))
    _check_optional(body, "description", str, "a string")
    _check_list(body, "tags", str)


def _check_optional(body: dict[str, Any], key: str, kind: type,
                    what: str) -> None:
    if key in body and not isinstance(body[key], kind):
        raise Invalid("%r must be %s, found %s"
                      % (key, what, _kind_of(body[key])))


def _check_list(body: dict[str, Any], key: str, item_kind: Any) -> None:
    # Mistral's schema: a non-empty list of distinct items.
    if key not in body:
        return
    items = body[key]
    if not isinstance(items, list) or not items:
        raise Invalid("%r must be a non-empty list, found %s"
                      % (key, _kind_of(items)))
    seen = []
    for item in items:
        if not isinstance(item, item_kind):
            raise Invalid("%r: item %r has the wrong type" % (key, item))
        if item in seen:
            raise Invalid("%r: %r is listed twice" % (key, item))
        seen.append(item)


def _check_json(value: Any, where: str) -> None:
    """Refuse values JSON cannot hold, e.g. an unquoted date."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _JSON_SCALARS):
                raise Invalid("%s: key %r is not a string" % (where, key))
            _check_json(item, "%s.%s" % (where, key) if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, "%s[%d]" % (where, i))
    elif not isinstance(value, _JSON_SCALARS):
        raise Invalid("%s: YAML read %r as a %s, which a definition cannot "
                      "hold; quote it" % (where, value, type(value).__name__))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    text = problem + _at(getattr(exc, "problem_mark", None))
    context = getattr(exc, "context", None)
    if context:
        mark = getattr(exc, "context_mark", None)
        text += " (%s%s)" % (context, " started" + _at(mark) if mark
                             else "")
    return text


def _at(mark: Any) -> str:
    if mark is None:
        return ""
    return " at line %d, column %d" % (mark.line + 1, mark.column + 1)


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    names: dict[type, str] = {dict: "a mapping", list: "a list",
                              str: "a string"}
    return names.get(type(value), "a %s" % type(value).__name__)
