"""The revision graph is Mistral's: 001..045, linear, documented."""
from __future__ import annotations

from mistral_db_flows import migration
from tests import reference


def _scripts():
    return migration.scripts()


def test_revision_ids_are_001_to_045_in_order():
    """Every upstream revision id exists, oldest first, and no others."""
    assert [s.revision for s in _scripts()] == reference.REVISIONS


def test_each_revision_follows_the_previous_number():
    """down_revision of NNN is NNN-1 (001 has none): one linear chain."""
    previous = None
    for script in _scripts():
        assert script.down_revision == previous, script.revision
        previous = script.revision


def test_single_head():
    """There is exactly one head, 045."""
    assert migration.heads() == [reference.HEAD]


def test_each_revision_docstring_says_what_it_changes():
    """history prints the docstring's first line: it must not be empty."""
    for script in _scripts():
        first = (script.doc or "").strip().splitlines()
        assert first and first[0].strip(), script.revision
