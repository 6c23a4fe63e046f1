"""Access to upstream Mistral's reference facts in tests/reference_data.

The data lives in the repository so that a plain clone can run its tests;
``tests/reference_data/README.md`` says where it came from and how to
regenerate it.
"""
from __future__ import annotations

import functools
import json
import pathlib

REFERENCE_DIR = pathlib.Path(__file__).resolve().parent / "reference_data"

REVISIONS = ["%03d" % n for n in range(1, 46)]
HEAD = REVISIONS[-1]


@functools.lru_cache(maxsize=None)
def schema(dialect: str, revision: str) -> dict:
    """Upstream's schema after ``upgrade revision`` (dialect pg|mysql)."""
    path = REFERENCE_DIR / "schema_by_rev" / dialect / ("%s.json" % revision)
    with open(path) as f:
        return json.load(f)
