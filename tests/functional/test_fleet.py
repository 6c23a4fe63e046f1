"""The fleet commands on real Redis and PostgreSQL: conductors take
jobs from a board and run them as the command would, a dead conductor's
job moves to another one and resumes, and no secret leaves the hosts.

Every test here uses PostgreSQL (the shared logbook) and Redis, so all
are ``slow`` but one smoke test for the quick subset, which reads the
board (tests/conftest.py).
"""
from __future__ import annotations

import json
import signal
import time

import pytest

from tests import migrate_util
from tests.functional import fleet_util
from tests.functional import safety_util as su

HEAD = "045"

pytestmark = [pytest.mark.postgresql]


@pytest.fixture
def fleet(tmp_path):
    su.require_fault_plugins()
    built = fleet_util.Fleet(tmp_path)
    try:
        yield built
    finally:
        built.close()


def _done(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return su.Done(proc.returncode, out, err)


def test_post_wait_upgrades_through_a_conductor_and_keeps_secrets_home(
        fleet, make_db):
    """A job posted with --wait is run by the conductor as `upgrade
    head` would (exit 0, the database at head with upstream's schema);
    the target's password is in no Redis key or value and in no row of
    the shared logbook; the board's keys are the job's sequence only
    once it is consumed; SIGTERM stops the idle conductor with 0."""
    url = fleet_util.with_password(make_db("postgresql"))
    fleet.add_target("region-one", url)
    conductor = fleet.start_conductor("host-a")
    done = _done(fleet.post("region-one", "upgrade", "head"))
    assert done.code == 0, done
    assert done.doc["outcome"]["exit_code"] == 0, done
    assert done.doc["outcome"]["run"]["end_revision"] == HEAD
    assert su.version(url) == HEAD
    assert migrate_util.schema_diff(url, HEAD) == []
    assert fleet_util.SECRET.encode() not in fleet.redis_contents()
    assert fleet_util.SECRET not in fleet.logbook_contents()
    assert fleet_util.SECRET not in conductor.text()
    assert len(conductor.jobs_started()) == 1
    assert conductor.stop() == 0, conductor.text()


def test_post_wait_exits_with_the_jobs_own_code(fleet, make_db):
    """A job that fails on the conductor exits post --wait with the code
    the command would have given there: a target the conductors do not
    know is a configuration error (2), an unknown revision 4; the JSON
    error carries the conductor's one line."""
    fleet.add_target("known", make_db("sqlite"))
    fleet.start_conductor("host-a")
    unknown = _done(fleet.post("nowhere", "verify"))
    assert unknown.code == 2, unknown
    assert "not configured on this host" in unknown.error_line()
    bad_rev = _done(fleet.post("known", "upgrade", "999"))
    assert bad_rev.code == 4, bad_rev
    assert json.loads(bad_rev.out)["error"]["type"] == "JobFailed"


@pytest.mark.smoke
def test_post_refuses_bad_input_before_posting(fleet):
    """A target name that is not a file name, or an operation without
    its revision, is refused with 2 and nothing reaches the board."""
    for argv in (("../etc/passwd", "verify"), ("t", "upgrade"),
                 ("t", "populate", "head")):
        done = _done(fleet.post(argv[0], *argv[1:]))
        assert done.code == 2, done
    assert fleet.redis_keys() == []


def _seeded(make_db, start):
    url = fleet_util.with_password(make_db("postgresql"))
    su.prepare(url, start)
    return url


@pytest.mark.slow
def test_a_killed_conductors_job_is_finished_by_the_other(fleet, make_db):
    """Two conductors, three jobs (one per database, seeded at 019):
    the conductor that reaches 025 first is SIGKILLed there (only it
    carries the fault); its claim lapses, the other conductor claims
    the job and resumes the run from the shared logbook. Every post
    --wait exits 0, every database is at 045 with upstream's schema and
    exactly the rows an uninterrupted upgrade gives, no job ran on two
    conductors at once, and no password reached Redis or the logbook."""
    urls = {"region-%d" % i: _seeded(make_db, "019") for i in (1, 2, 3)}
    for name, url in urls.items():
        fleet.add_target(name, url)
    doomed = fleet.start_conductor(
        "host-a", fault="after:migrate_025:kill", claim_expiry=3)
    survivor = fleet.start_conductor("host-b", claim_expiry=3)
    posts = {name: fleet.post(name, "upgrade", "head") for name in urls}
    results = {name: _done(proc, timeout=600)
               for name, proc in posts.items()}
    assert doomed.proc.wait(timeout=60) == -signal.SIGKILL, doomed.text()
    killed_job = doomed.jobs_started()[-1]
    for name, done in results.items():
        assert done.code == 0, (name, done)
        assert su.version(urls[name]) == HEAD
        assert migrate_util.schema_diff(urls[name], HEAD) == [], name
        assert su.state_diff(su.state(urls[name]),
                             su.expected_head_state("postgresql",
                                                    "019")) == [], name
    # A died on its first job; B ran each of the three jobs once, the
    # dead conductor's among them.
    assert len(doomed.jobs_started()) == 1
    assert killed_job in survivor.jobs_started()
    assert len(set(survivor.jobs_started())) == \
        len(survivor.jobs_started()) == 3
    resumed = [d for d in results.values() if d.doc["outcome"]["run"]
               ["resumed"]]
    assert len(resumed) == 1
    assert [line for line in fleet.faults_fired() if "kill" in line]
    assert fleet_util.SECRET.encode() not in fleet.redis_contents()
    assert fleet_util.SECRET not in fleet.logbook_contents()
    assert survivor.stop() == 0


@pytest.mark.slow
def test_a_step_longer_than_the_claim_runs_on_one_conductor(fleet, make_db):
    """A step sleeping three times the claim expiry: the heartbeat keeps
    the claim, so exactly one of two conductors ever starts the job and
    the step runs once."""
    url = make_db("postgresql")
    fleet.add_target("slow-one", url)
    conductors = [fleet.start_conductor(name, claim_expiry=2,
                                        fault="before:migrate_010:sleep:6")
                  for name in ("host-a", "host-b")]
    done = _done(fleet.post("slow-one", "upgrade", "head"))
    assert done.code == 0, done
    started = [job for c in conductors for job in c.jobs_started()]
    assert len(started) == 1, [c.text() for c in conductors]
    assert len([f for f in fleet.faults_fired() if "sleep" in f]) == 1
    assert su.version(url) == HEAD
    for conductor in conductors:
        assert conductor.stop() == 0


@pytest.mark.slow
def test_sigterm_finishes_the_job_and_a_second_one_hands_it_over(
        fleet, make_db):
    """The first SIGTERM lets the running job end (the conductor then
    exits 0); a second one interrupts it (exit 130) and another
    conductor, started afterwards, resumes the run once the claim
    lapsed: both post --wait exit 0, the second run says resumed."""
    first, second = make_db("postgresql"), make_db("postgresql")
    fleet.add_target("gentle", first)
    fleet.add_target("abrupt", second)
    sleep = "before:migrate_010:sleep:4"
    for name, signals, code in (("gentle", 1, 0), ("abrupt", 2, 130)):
        fired = len(fleet.faults_fired())
        conductor = fleet.start_conductor("host-%s" % name, fault=sleep,
                                          claim_expiry=2)
        post = fleet.post(name, "upgrade", "head")
        fleet_util.wait_for(lambda: len(fleet.faults_fired()) > fired,
                            120, "the sleeping step")
        for _ in range(signals):
            conductor.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
        assert conductor.proc.wait(timeout=120) == code, conductor.text()
        if code:
            fleet.start_conductor("host-rescue", claim_expiry=2)
        done = _done(post)
        assert done.code == 0, done
        assert done.doc["outcome"]["run"]["resumed"] is bool(code)
    assert su.version(first) == su.version(second) == HEAD
