"""Access to the upstream reference facts in ../shared/reference."""
from __future__ import annotations

import functools
import json
import os
import pathlib

REFERENCE_DIR = pathlib.Path(os.environ.get(
    "MDF_REFERENCE_DIR",
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference"))

REVISIONS = ["%03d" % n for n in range(1, 46)]
HEAD = REVISIONS[-1]


@functools.lru_cache(maxsize=None)
def schema(dialect: str, revision: str) -> dict:
    """Upstream's schema after ``upgrade revision`` (dialect pg|mysql)."""
    path = REFERENCE_DIR / "schema_by_rev" / dialect / ("%s.json" % revision)
    with open(path) as f:
        return json.load(f)
