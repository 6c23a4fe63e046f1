"""The revision graph and the plans made on it (``revisions``).

Targets are resolved against small made-up revision graphs; the parser
is checked against Alembic on the shipped revisions and on files
written here.
"""
from __future__ import annotations

import pytest

from mistral_db_flows import exceptions
from mistral_db_flows import migration
from mistral_db_flows import revisions


def chain(n: int, heads: int = 1) -> revisions.Graph:
    """001..00n in one chain; extra heads branch off 001."""
    files = []
    for i in range(1, n + 1):
        rev = "%03d" % i
        down = ("%03d" % (i - 1),) if i > 1 else ()
        files.append(revisions.RevisionFile(rev, down, "doc " + rev, rev))
    for j in range(1, heads):
        files.append(revisions.RevisionFile("b%d" % j, ("001",), "b", "b"))
    return revisions.Graph(files)


G = chain(5)


# -- the graph --------------------------------------------------------------

def test_graph_of_a_chain():
    """A chain has one base, one head, no branch point and is sound."""
    assert (G.bases, G.heads, G.branch_points, G.missing) == (
        ["001"], ["005"], [], [])
    assert G.sound
    assert G.order == ["001", "002", "003", "004", "005"]
    assert G.between("002", "005") == ["003", "004", "005"]
    assert G.between(None, "002") == ["001", "002"]
    assert G.ancestors("003") == {"001", "002", "003"}


def test_graph_with_two_heads_and_a_gap():
    """Branches and dangling down revisions make the graph unsound."""
    branched = chain(3, heads=2)
    assert branched.heads == ["003", "b1"]
    assert branched.branch_points == ["001"]
    assert not branched.sound
    gap = revisions.Graph([
        revisions.RevisionFile("001", (), "", ""),
        revisions.RevisionFile("003", ("002",), "", "")])
    assert gap.missing == ["002"] and not gap.sound


def test_parser_reads_what_alembic_reads():
    """The pure parser agrees with Alembic on every shipped revision."""
    graph = revisions.graph()
    scripts = migration.scripts()
    assert [s.revision for s in scripts] == graph.order
    for script in scripts:
        parsed = graph.revisions[script.revision]
        assert parsed.down_revision == script.down_revision
        assert parsed.doc == script.doc, script.revision


def test_parser_handles_annotations_tuples_and_no_docstring(tmp_path):
    """Newer Alembic templates annotate; merges list several parents."""
    path = tmp_path / "x.py"
    path.write_text('# comment\nrevision: str = "m1"\n'
                    'down_revision: tuple = (\n    "a",\n    "b",\n)\n')
    parsed = revisions.parse_revision_file(str(path))
    assert parsed.id == "m1"
    assert parsed.down_revision == ["a", "b"]
    assert parsed.doc == ""
    path.write_text('"""Not a revision."""\nx = 1\n')
    assert revisions.parse_revision_file(str(path)) is None


def test_doc_is_the_first_paragraph(tmp_path):
    """Like Alembic's Script.doc: stripped, up to the first blank line."""
    path = tmp_path / "y.py"
    path.write_text('"""\nFirst line\n   continued\n\nRevision ID: 9\n"""\n'
                    'revision = "009"\ndown_revision = None\n')
    assert revisions.parse_revision_file(str(path)).doc == \
        "First line\n   continued"


@pytest.mark.parametrize("line", [
    "branch_labels = None", "depends_on = None",
    "branch_labels: str | None = None", "depends_on = ()",
    "depends_on: tuple = []",
])
def test_empty_branch_labels_and_depends_on_are_accepted(tmp_path, line):
    """Alembic's own template writes both as None: nothing to refuse."""
    path = tmp_path / "r.py"
    path.write_text('revision = "r1"\ndown_revision = None\n%s\n' % line)
    assert revisions.parse_revision_file(str(path)).id == "r1"


@pytest.mark.parametrize("line,name,shown", [
    ('branch_labels = ("mistral",)', "branch_labels", "('mistral',)"),
    ('branch_labels: tuple = "x"', "branch_labels", "'x'"),
    ('depends_on = "abc"', "depends_on", "'abc'"),
    ('depends_on = ["a", "b"]', "depends_on", "['a', 'b']"),
    ("depends_on = labels()", "depends_on", "'labels()'"),
])
def test_branch_labels_and_depends_on_are_refused(tmp_path, line, name,
                                                  shown):
    """The graph models neither, so a file declaring one is an error
    naming the file and what it declares, not a silently wrong plan."""
    path = tmp_path / "r.py"
    path.write_text('revision = "r1"\ndown_revision = None\n%s\n' % line)
    with pytest.raises(exceptions.UnsupportedRevisionFile) as info:
        revisions.parse_revision_file(str(path))
    assert (info.value.path, info.value.name, info.value.value) == (
        str(path), name, shown)
    assert str(path) in str(info.value) and name in str(info.value)
    assert info.value.exit_code == 5


def test_a_refused_file_stops_the_whole_graph(tmp_path):
    """graph() on a folder with such a file raises, naming the file."""
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "001_a.py").write_text(
        'revision = "001"\ndown_revision = None\n')
    (versions / "002_b.py").write_text(
        'revision = "002"\ndown_revision = "001"\n'
        'depends_on = "001"\n')
    with pytest.raises(exceptions.UnsupportedRevisionFile) as info:
        revisions.graph(str(tmp_path))
    assert info.value.path == str(versions / "002_b.py")


# -- upgrade targets --------------------------------------------------------

@pytest.mark.parametrize("current,target,delta,expected", [
    ([], "head", None, (None, "005", ("001", "002", "003", "004", "005"))),
    (["002"], "head", None, ("002", "005", ("003", "004", "005"))),
    (["002"], "heads", None, ("002", "005", ("003", "004", "005"))),
    (["002"], "004", None, ("002", "004", ("003", "004"))),
    (["002"], "+1", None, ("002", "003", ("003",))),
    ([], "+2", None, (None, "002", ("001", "002"))),
    (["002"], None, 3, ("002", "005", ("003", "004", "005"))),
    (["002"], None, "2", ("002", "004", ("003", "004"))),
    (["005"], "head", None, ("005", "005", ())),
    (["003"], "003", None, ("003", "003", ())),
    ([], "base", None, (None, None, ())),
])
def test_upgrade_targets(current, target, delta, expected):
    """head, NNN, +N and a delta resolve against the current revision."""
    plan = revisions.plan_upgrade(G, current, target, delta)
    assert (plan.start, plan.target, plan.pending) == expected
    assert plan.unchanged == (not expected[2])


@pytest.mark.parametrize("current,target,delta,error,words", [
    ([], None, None, exceptions.BadTarget, "provide a revision"),
    ([], "  ", None, exceptions.BadTarget, "provide a revision"),
    ([], "head", 1, exceptions.BadTarget, "not both"),
    ([], None, 0, exceptions.BadTarget, "--delta 0"),
    ([], None, -1, exceptions.BadTarget, "--delta -1"),
    ([], None, "x", exceptions.BadTarget, "not a number"),
    ([], None, True, exceptions.BadTarget, "not a number"),
    ([], "+0", None, exceptions.BadTarget, "+0"),
    (["003"], "+3", None, exceptions.BadTarget, "past head"),
    (["005"], "+1", None, exceptions.BadTarget, "past head"),
    ([], None, 6, exceptions.BadTarget, "past head"),
    (["003"], "-1", None, exceptions.BadTarget, "downgrade"),
    (["003"], "002", None, exceptions.BadTarget, "downgrade"),
    (["003"], "base", None, exceptions.BadTarget, "downgrade"),
    ([], "001:003", None, exceptions.BadTarget, "--sql"),
    ([], "999", None, exceptions.UnknownRevision, "'999'"),
    ([], "abc", None, exceptions.UnknownRevision, "'abc'"),
    (["999"], "head", None, exceptions.UnknownRevision, "'999'"),
    (["002", "003"], "head", None, exceptions.MistralDbError, "several"),
])
def test_bad_upgrade_targets(current, target, delta, error, words):
    """Every bad target is refused with a message saying what is wrong."""
    with pytest.raises(error) as info:
        revisions.plan_upgrade(G, current, target, delta)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_stamped_unknown_revision_says_it_is_the_database():
    """An unknown stamped revision names the database, not the target."""
    with pytest.raises(exceptions.UnknownRevision) as info:
        revisions.plan_upgrade(G, ["999"], "head")
    assert info.value.where == "database"
    assert info.value.exit_code == 4


def test_branched_graph_is_refused():
    """Several heads: "head" means nothing, so nothing is planned."""
    with pytest.raises(exceptions.BranchError) as info:
        revisions.plan_upgrade(chain(3, heads=2), [], "head")
    assert info.value.heads == ["003", "b1"]
    assert info.value.branch_points == ["001"]


# -- offline targets --------------------------------------------------------

@pytest.mark.parametrize("target,expected", [
    ("head", (None, "005")),
    ("003", (None, "003")),
    ("002:004", ("002", "004")),
    ("002:head", ("002", "005")),
    ("base:003", (None, "003")),
])
def test_offline_targets(target, expected):
    """--sql: a target is from the empty database; start:end a range."""
    plan = revisions.plan_offline(G, target)
    assert (plan.start, plan.target) == expected


@pytest.mark.parametrize("target,delta,error,words", [
    (None, None, exceptions.BadTarget, "needs a target"),
    ("head", 1, exceptions.BadTarget, "--delta"),
    ("+1", None, exceptions.BadTarget, "start:end"),
    (":", None, exceptions.BadTarget, "range"),
    ("002:", None, exceptions.BadTarget, "range"),
    (":004", None, exceptions.BadTarget, "range"),
    ("1:2:3", None, exceptions.BadTarget, "range"),
    ("004:002", None, exceptions.BadTarget, "004:002"),
    ("003:003", None, exceptions.BadTarget, "older"),
    ("base", None, exceptions.BadTarget, "base"),
    ("abc:def", None, exceptions.UnknownRevision, "'abc'"),
    ("002:999", None, exceptions.UnknownRevision, "'999'"),
    ("999", None, exceptions.UnknownRevision, "'999'"),
])
def test_bad_offline_targets(target, delta, error, words):
    """Bad ranges and relative targets are refused before any SQL."""
    with pytest.raises(error) as info:
        revisions.plan_offline(G, target, delta)
    assert words in str(info.value)


# -- stamp ------------------------------------------------------------------

@pytest.mark.parametrize("current,revision,expected", [
    (["002"], "head", ("002", "005")),
    ([], "003", (None, "003")),
    (["003"], "base", ("003", None)),
    (["003"], "003", ("003", "003")),
])
def test_stamp_targets(current, revision, expected):
    """stamp moves only the version pointer, up or down."""
    plan = revisions.plan_stamp(G, current, revision)
    assert (plan.start, plan.target, plan.pending) == expected + ((),)


@pytest.mark.parametrize("revision,error,words", [
    (None, exceptions.BadTarget, "stamp needs a revision"),
    ("", exceptions.BadTarget, "stamp needs a revision"),
    ("001:003", exceptions.BadTarget, "one revision"),
    ("+1", exceptions.BadTarget, "one revision"),
    ("999", exceptions.UnknownRevision, "'999'"),
])
def test_bad_stamp_targets(revision, error, words):
    """An empty revision is refused: upstream would empty the table."""
    with pytest.raises(error) as info:
        revisions.plan_stamp(G, ["002"], revision)
    assert words in str(info.value)
