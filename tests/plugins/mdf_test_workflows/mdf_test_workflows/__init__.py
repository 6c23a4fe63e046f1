"""Definition sources driven by environment variables, for tests.

- ``MDF_TEST_WORKFLOWS_DIR``: its ``*.yaml`` files, sorted, are what the
  ``mistral.preinstalled_workflows`` entry point returns (as
  mistral-extra's does).
- ``MDF_TEST_DEFINITIONS_DIR``: its ``actions/*.yaml`` and
  ``workflows/*.yaml`` are what the ``mistral_db_flows.definitions``
  entry point returns.
- ``MDF_TEST_BROKEN_PLUGIN``: how the ``mdf_test_broken`` entry point
  misbehaves: ``import`` (cannot be loaded), ``call`` (raises when
  called), ``value`` (returns something that is not a mapping of paths).
  Unset, it contributes nothing.
"""
from __future__ import annotations

import glob
import os


def _yaml_files(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "*.yaml")))


def preinstalled_workflows() -> list[str]:
    folder = os.environ.get("MDF_TEST_WORKFLOWS_DIR")
    return _yaml_files(folder) if folder else []


def definitions() -> dict[str, list[str]]:
    folder = os.environ.get("MDF_TEST_DEFINITIONS_DIR")
    if not folder:
        return {}
    return {"actions": _yaml_files(os.path.join(folder, "actions")),
            "workflows": _yaml_files(os.path.join(folder, "workflows"))}


def _broken() -> object:
    mode = os.environ.get("MDF_TEST_BROKEN_PLUGIN")
    if mode == "call":
        raise RuntimeError("simulated failure inside the plugin")
    if mode == "value":
        return 42
    return {}


def __getattr__(name: str) -> object:
    # Looked up on every entry point load, so a test can make loading
    # fail without touching sys.modules.
    if name == "broken":
        if os.environ.get("MDF_TEST_BROKEN_PLUGIN") == "import":
            raise ImportError("simulated import failure")
        return _broken
    raise AttributeError(name)
