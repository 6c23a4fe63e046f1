"""schema_compare.foreign_objects: what a database has beyond Mistral's.

Pure data, no database: the functional test_foreign_objects checks the
same on live databases through verify.
"""
from __future__ import annotations

import copy

from mistral_db_flows import schema_compare


def _table(*indexes: dict) -> dict:
    return {"columns": [{"name": "id", "generic": "String(36)",
                         "nullable": False},
                        {"name": "description", "generic": "Text",
                         "nullable": True}],
            "primary_key": {"name": None, "columns": ["id"]},
            "unique_constraints": [], "indexes": list(indexes),
            "foreign_keys": []}


def _index(name: str, *columns: str, unique: bool = False) -> dict:
    return {"name": name, "columns": list(columns), "unique": unique}


EXPECTED = {"tables": {"workbooks_v2": _table(_index("wb_id", "id"))}}


def test_extra_table_and_indexes_are_named_with_their_diff_lines():
    """Each foreign object comes with the exact generic diff line it
    causes, so verify can set exactly those lines apart."""
    actual = copy.deepcopy(EXPECTED)
    actual["tables"]["ops_audit"] = _table()
    actual["tables"]["workbooks_v2"]["indexes"] += [
        _index("ix_desc", "description"),
        _index("ux_desc", "description", unique=True)]
    found = schema_compare.foreign_objects(EXPECTED, actual)
    assert found == [
        ("unexpected table ops_audit", "table ops_audit"),
        ("workbooks_v2: unexpected index on ['description']",
         "index ix_desc on workbooks_v2"),
        ("workbooks_v2: unexpected unique on ['description']",
         "unique index ux_desc on workbooks_v2")]
    lines = schema_compare.diff(EXPECTED, actual, schema_compare.GENERIC)
    assert sorted(lines) == sorted(line for line, _ in found)


def test_nothing_foreign_in_mistrals_own_schema_or_a_missing_index():
    """Mistral's own indexes, a duplicate of one, and a missing one are
    not foreign objects (a missing index stays a difference)."""
    assert schema_compare.foreign_objects(EXPECTED, EXPECTED) == []
    duplicate = copy.deepcopy(EXPECTED)
    duplicate["tables"]["workbooks_v2"]["indexes"].append(
        _index("ix_id_again", "id"))
    assert schema_compare.foreign_objects(EXPECTED, duplicate) == []
    missing = copy.deepcopy(EXPECTED)
    missing["tables"]["workbooks_v2"]["indexes"] = []
    assert schema_compare.foreign_objects(EXPECTED, missing) == []
    assert schema_compare.diff(EXPECTED, missing, schema_compare.GENERIC) \
        == ["workbooks_v2: missing index on ['id']"]
