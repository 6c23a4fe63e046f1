"""Which rebuilt flow continues an interrupted run (resume.same_steps):
a host's flow re-planned from the database's revision lacks the migrate
steps the database has; anything else is another run."""
from __future__ import annotations

import pytest

from mistral_db_flows import resume

RECORDED = ["host_before", "backup", "migrate_019", "migrate_020",
            "migrate_021", "verify", "host_after"]


def _atoms(**states):
    atoms = {name: "PENDING" for name in RECORDED}
    atoms.update(host_before="SUCCESS", backup="SUCCESS",
                 migrate_019="SUCCESS")
    atoms.update(states)
    return atoms


@pytest.mark.parametrize("names, atoms", [
    (RECORDED, _atoms(migrate_020="RUNNING")),
    # re-planned from 019: 019 (done) is left out
    ([n for n in RECORDED if n != "migrate_019"],
     _atoms(migrate_020="RUNNING")),
    # killed after 020's work: the re-plan starts at 021
    ([n for n in RECORDED if n not in ("migrate_019", "migrate_020")],
     _atoms(migrate_020="RUNNING")),
])
def test_the_same_run(names, atoms):
    assert resume.same_steps(names, RECORDED, atoms)


@pytest.mark.parametrize("names, atoms", [
    # another target: pending steps left out at the end
    (RECORDED[:4] + ["verify", "host_after"], _atoms()),
    # a step the run never had
    (RECORDED[:3] + ["host_extra"] + RECORDED[3:], _atoms()),
    # another order
    (["backup", "host_before"] + RECORDED[2:], _atoms()),
    # a pending step left out in the middle
    ([n for n in RECORDED if n != "migrate_021"], _atoms()),
    # a failed step left out: its revert is part of this run
    ([n for n in RECORDED if n != "migrate_020"],
     _atoms(migrate_020="FAILURE")),
])
def test_another_run(names, atoms):
    assert not resume.same_steps(names, RECORDED, atoms)
