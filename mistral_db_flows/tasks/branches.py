"""check_branches: refuse to run on a revision graph with several heads."""
from __future__ import annotations

from taskflow import task

from mistral_db_flows import exceptions
from mistral_db_flows import revisions


class CheckBranches(task.Task):
    """Read-only: the graph is one unbroken chain with a single head."""

    def __init__(self) -> None:
        super().__init__(name="check_branches")

    def execute(self) -> dict:
        graph = revisions.graph()
        if not graph.sound:
            raise exceptions.BranchError(graph.branch_points, graph.heads,
                                         graph.missing)
        return {"head": graph.heads[0], "revisions": len(graph.revisions)}


def factory(ctx) -> list[task.Task]:
    return [CheckBranches()]
