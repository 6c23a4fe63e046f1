"""A plain (non-editable) install works from any directory.

The working tree is copied (so the build leaves nothing behind in the
checkout), installed with ``pip install <copy>`` into a fresh virtualenv,
and the installed ``mistral-db-manage`` upgrades the embedded default
database, ``mistral.sqlite`` in another directory, to head.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEAD = "045"
IGNORE = shutil.ignore_patterns(".git", ".venv*", ".upstream-venv",
                                "__pycache__", "*.pyc", "build", "dist",
                                "*.egg-info", "mistral.sqlite")


@pytest.mark.slow
def test_install_into_fresh_virtualenv(tmp_path):
    """pip install (not -e) ships the migrations; upgrade head works."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["HOME"] = str(tmp_path)  # no ~/.mistral/mistral.conf by chance
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
         str(source)], env=env, capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tool = str(venv / "bin" / "mistral-db-manage")

    def run(*argv: str, expect: int = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run([tool] + list(argv), cwd=elsewhere, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == expect, proc.stdout + proc.stderr
        return proc

    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import mistral_db_flows.migrations as m; print(m.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert str(venv) in located.stdout  # not the checkout

    run("upgrade", "head")
    assert (elsewhere / "mistral.sqlite").exists()
    assert run("current").stdout == "%s (head)\n" % HEAD
    assert run("status").stdout.splitlines()[-1] == "up to date"
    # Installed migrations are read-only: a clear error, nothing written.
    proc = run("revision", "-m", "should not be written", expect=2)
    assert len(proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr
