"""Compare two schema descriptions made by :mod:`schema_dump`.

``exact`` compares everything a backend shows (native types, column order,
constraint and index names, defaults, table options); ``generic`` compares
what must hold across backends (tables, columns with generic types and
nullability, index and unique column sets, foreign keys), which is how a
SQLite database is compared with the PostgreSQL reference.
"""
from __future__ import annotations

from typing import Any, Iterable

EXACT = "exact"
GENERIC = "generic"


def _by_name(items: Iterable[dict]) -> dict:
    return {i["name"]: i for i in items}


def _fk_key(fk: dict) -> tuple:
    return (tuple(fk["columns"]), fk["referred_table"],
            tuple(fk["referred_columns"]), (fk.get("ondelete") or "").upper())


def _column_diffs(table: str, exp: list, act: list, mode: str) -> list[str]:
    out = []
    exp_names = [c["name"] for c in exp]
    act_names = [c["name"] for c in act]
    for name in exp_names:
        if name not in act_names:
            out.append("%s: missing column %s" % (table, name))
    for name in act_names:
        if name not in exp_names:
            out.append("%s: unexpected column %s" % (table, name))
    if mode == EXACT and set(exp_names) == set(act_names) \
            and exp_names != act_names:
        out.append("%s: column order %s, expected %s"
                   % (table, act_names, exp_names))
    act_by = _by_name(act)
    fields = (("type", "nullable", "default", "autoincrement")
              if mode == EXACT else ("generic", "nullable"))
    for col in exp:
        other = act_by.get(col["name"])
        if other is None:
            continue
        for field in fields:
            if col.get(field) != other.get(field):
                out.append("%s.%s: %s is %r, expected %r"
                           % (table, col["name"], field, other.get(field),
                              col.get(field)))
    return out


def _named_diffs(table: str, kind: str, exp: list, act: list,
                 key) -> list[str]:
    """Compare lists of named objects (with multiplicity)."""
    out = []
    exp_keys = sorted(key(i) for i in exp)
    act_keys = sorted(key(i) for i in act)
    for k in exp_keys:
        if k in act_keys:
            act_keys.remove(k)
        else:
            out.append("%s: missing %s %s" % (table, kind, k))
    for k in act_keys:
        out.append("%s: unexpected %s %s" % (table, kind, k))
    return out


# (unique, how a generic difference line names it)
_GENERIC_INDEX_KINDS = ((False, "index on"), (True, "unique on"))


def _indexes(table: dict, unique: bool) -> list[tuple[str, dict]]:
    """A table's indexes (unique ones with its unique constraints)."""
    out = [("unique index" if unique else "index", i)
           for i in table["indexes"] if bool(i["unique"]) == unique]
    if unique:
        out += [("unique constraint", u)
                for u in table["unique_constraints"]]
    return out


def _column_sets(table: dict, unique: bool) -> set:
    return {tuple(sorted(i["columns"])) for _, i in _indexes(table, unique)}


def _table_diffs(name: str, exp: dict, act: dict, mode: str) -> list[str]:
    out = _column_diffs(name, exp["columns"], act["columns"], mode)
    if mode == EXACT:
        if exp["primary_key"] != act["primary_key"]:
            out.append("%s: primary key %s, expected %s"
                       % (name, act["primary_key"], exp["primary_key"]))
        out += _named_diffs(
            name, "unique constraint", exp["unique_constraints"],
            act["unique_constraints"],
            lambda u: (str(u["name"]), tuple(u["columns"])))
        out += _named_diffs(
            name, "index", exp["indexes"], act["indexes"],
            lambda i: (str(i["name"]), tuple(i["columns"]), i["unique"]))
        out += _named_diffs(
            name, "foreign key", exp["foreign_keys"], act["foreign_keys"],
            lambda f: (str(f["name"]),) + _fk_key(f))
        if exp.get("options") != act.get("options"):
            out.append("%s: options %s, expected %s"
                       % (name, act.get("options"), exp.get("options")))
        return out

    if sorted(exp["primary_key"]["columns"]) != \
            sorted(act["primary_key"]["columns"]):
        out.append("%s: primary key columns %s, expected %s"
                   % (name, act["primary_key"]["columns"],
                      exp["primary_key"]["columns"]))

    for unique, kind in _GENERIC_INDEX_KINDS:
        e, a = _column_sets(exp, unique), _column_sets(act, unique)
        out += ["%s: missing %s %s" % (name, kind, list(c))
                for c in sorted(e - a)]
        out += ["%s: unexpected %s %s" % (name, kind, list(c))
                for c in sorted(a - e)]
    e = {_fk_key(f) for f in exp["foreign_keys"]}
    a = {_fk_key(f) for f in act["foreign_keys"]}
    out += ["%s: missing foreign key %s" % (name, k) for k in sorted(e - a)]
    out += ["%s: unexpected foreign key %s" % (name, k)
            for k in sorted(a - e)]
    return out


def diff(expected: dict, actual: dict, mode: str = EXACT,
         ignore: Any = ()) -> list[str]:
    """Return the differences of ``actual`` from ``expected``, one a line.

    ``ignore`` holds exact difference lines that are known and accepted
    (see :mod:`mistral_db_flows.known_drift`).
    """
    out = []
    exp_t, act_t = expected["tables"], actual["tables"]
    for name in sorted(set(exp_t) - set(act_t)):
        out.append("missing table %s" % name)
    for name in sorted(set(act_t) - set(exp_t)):
        out.append("unexpected table %s" % name)
    for name in sorted(set(exp_t) & set(act_t)):
        out += _table_diffs(name, exp_t[name], act_t[name], mode)
    ignored = set(ignore)
    return [line for line in out if line not in ignored]


def foreign_objects(expected: dict, actual: dict) -> list[tuple[str, str]]:
    """What ``actual`` has beyond ``expected``: tables and indexes.

    One ``(line, label)`` pair per object: ``line`` is the generic
    :func:`diff` line the object causes, ``label`` names it for people
    (``table ops_audit``, ``index ix_desc on workflow_executions_v2``).
    An index counts when no expected index of its table has its columns:
    an extra index on columns the expected schema indexes already causes
    no line. Whether a line is upstream's own (known drift) is for the
    caller to say.
    """
    out = []
    exp_t, act_t = expected["tables"], actual["tables"]
    for name in sorted(set(act_t) - set(exp_t)):
        out.append(("unexpected table %s" % name, "table %s" % name))
    for name in sorted(set(exp_t) & set(act_t)):
        for unique, kind in _GENERIC_INDEX_KINDS:
            known = _column_sets(exp_t[name], unique)
            for what, index in _indexes(act_t[name], unique):
                columns = tuple(sorted(index["columns"]))
                if columns not in known:
                    out.append(("%s: unexpected %s %s"
                                % (name, kind, list(columns)),
                                "%s %s on %s" % (what, index["name"],
                                                 name)))
    return out
