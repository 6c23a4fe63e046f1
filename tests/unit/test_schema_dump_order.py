"""Schema dumps list unnamed constraints in an order of their own."""
from __future__ import annotations

import itertools

from mistral_db_flows import schema_dump


def _fk(column, table):
    return {"name": None, "columns": [column], "referred_table": table,
            "referred_columns": ["id"], "ondelete": None, "onupdate": None}


def test_unnamed_foreign_keys_sort_the_same_whatever_reflection_gave():
    fks = [_fk("b", "t"), _fk("a", "u"), _fk("a", "t")]
    orders = {tuple(map(repr, sorted(p, key=schema_dump._order)))
              for p in itertools.permutations(fks)}
    assert len(orders) == 1


def test_named_ones_still_sort_by_name():
    named = [dict(_fk("z", "t"), name="fk_a"), dict(_fk("a", "t"),
                                                    name="fk_b")]
    assert [f["name"] for f in sorted(reversed(named),
                                      key=schema_dump._order)] == [
        "fk_a", "fk_b"]
