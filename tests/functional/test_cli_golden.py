"""Golden output of the commands operators script against, on SQLite.

Each transcript is stdout and stderr of one command, byte for byte,
except what changes from run to run (durations, temporary paths), which
is replaced by a placeholder. They were recorded before the CLI's output
code was split into console.py and the result classes, and prove the
split kept every byte. Set ``MDF_GOLDEN_RECORD=1`` to record them again
after an intended change, and review the diff.
"""
from __future__ import annotations

import os
import pathlib
import re

import pytest

from mistral_db_flows import cli

GOLDEN = pathlib.Path(__file__).parent / "golden"

# Durations and per-test paths vary between runs; nothing else may.
_VARYING = [
    (re.compile(r"\d+\.\d+ s\b"), "<seconds> s"),
    (re.compile(r'"(duration|seconds)": [0-9.e-]+'), r'"\1": <seconds>'),
    # A backup's name: the database's identity hash and the time.
    (re.compile(r"-[0-9a-f]{8}-\d{8}T\d{12}Z-"), "-<id>-<time>-"),
    (re.compile(r'"created": "[^"]+"'), '"created": "<time>"'),
    # The test plugins are asked too when installed (they give nothing
    # here); the transcript is the same with or without them.
    (re.compile(r", [a-z_.]+:mdf_test\w*"), ""),
    # A backup's digest: its file holds the time of the rows' writes.
    (re.compile(r'"sha256": "[0-9a-f]{64}"'), '"sha256": "<sha256>"'),
]


def _normal(text: str, tmp_path: pathlib.Path) -> str:
    text = text.replace(str(tmp_path), "<tmp>")
    for pattern, placeholder in _VARYING:
        text = pattern.sub(placeholder, text)
    return text


def _check(name: str, text: str) -> None:
    path = GOLDEN / (name + ".txt")
    if os.environ.get("MDF_GOLDEN_RECORD"):
        path.write_text(text)
    assert text == path.read_text(), name


@pytest.fixture
def transcript(capsys, tmp_path):
    """Run commands against a fresh SQLite database; return each's text."""
    url = "sqlite:///%s" % (tmp_path / "golden.sqlite")
    conf = tmp_path / "mistral.conf"
    conf.write_text("[database]\nconnection = %s\n" % url)

    def run(*argv: str) -> str:
        code = cli.main(["--config-file", str(conf)] + list(argv))
        out, err = capsys.readouterr()
        return _normal("$ %s\nexit %d\n--- stdout\n%s--- stderr\n%s"
                       % (" ".join(argv), code, out, err), tmp_path)

    return run


# Transcripts in order: each command sees the database the previous
# ones left (empty, then below head, then at head).
SESSION = [
    ("current-empty", ["current"]),
    ("status-empty", ["status"]),
    ("upgrade-030", ["upgrade", "030"]),
    ("current-030", ["current"]),
    ("current-030-verbose", ["current", "--verbose"]),
    ("status-030", ["status"]),
    ("status-030-json", ["--format", "json", "status"]),
    ("upgrade-head", ["upgrade", "head"]),
    ("upgrade-head-again", ["upgrade", "head"]),
    ("current-head", ["current"]),
    ("current-head-json", ["--format", "json", "current"]),
    ("status-head", ["status"]),
    ("history", ["history"]),
    ("history-json", ["--format", "json", "history"]),
    ("branches", ["branches"]),
    ("check_migration", ["check_migration"]),
    ("check_migration-json", ["--format", "json", "check_migration"]),
    ("stamp-044-json", ["stamp", "044", "--format", "json"]),
    ("upgrade-head-json", ["--format", "json", "upgrade", "head"]),
    ("populate", ["populate"]),
    ("populate-again", ["populate"]),
    ("verify", ["verify"]),
    ("abandon", ["abandon"]),
    ("status-sql-refused", ["status", "--sql"]),
]


def test_session_output_is_unchanged(transcript):
    """current, status, upgrade, history... print what they printed."""
    for name, argv in SESSION:
        _check(name, transcript(*argv))


def test_offline_upgrade_sql_is_unchanged(transcript):
    """upgrade --sql START:END prints the same script."""
    _check("upgrade-sql-043-045", transcript("upgrade", "043:045", "--sql"))
