"""The package's modules import alone and form no import cycle."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

import mistral_db_flows

PACKAGE = "mistral_db_flows"
ROOT = os.path.dirname(os.path.abspath(mistral_db_flows.__file__))


def _modules() -> dict[str, str]:
    """Module name -> file, for every module of the package (the
    migrations are data Alembic loads, not modules of the package)."""
    found = {}
    for folder, _dirs, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), ROOT)
            parts = [PACKAGE] + rel[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = os.path.join(folder, name)
    return found


def _imported(module: str, path: str, known: set[str]) -> set[str]:
    """The package's modules ``module`` imports, anywhere in its file
    (an import inside a function closes a cycle all the same)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") \
        else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split("."))
                                         - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for alias in node.names:
                full = "%s.%s" % (base, alias.name)
                if full in known:
                    out.add(full)
                elif base in known:
                    out.add(base)
    out.discard(module)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    """The check below can fail: a made-up cycle is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_the_package_modules():
    """No module imports (at its top or inside a function) a module that
    leads back to it: each concept has one home, below its users."""
    modules = _modules()
    assert "mistral_db_flows.revisions" in modules
    graph = {m: _imported(m, p, set(modules)) for m, p in modules.items()}
    assert "mistral_db_flows.migration" in graph[
        "mistral_db_flows.version_table"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_every_module_imports_on_its_own():
    """In a fresh interpreter, each module imports first of the package
    (the package's modules are forgotten before each one), so none
    relies on another having been imported before it."""
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules\n"
        "                   if m.split('.')[0] == %r]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append('%%s: %%r' %% (name, exc))\n"
        "print('\\n'.join(failed))\n" % PACKAGE)
    proc = subprocess.run([sys.executable, "-c", script,
                           *sorted(_modules())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ""
