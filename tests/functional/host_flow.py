"""A host's own upgrade flow, run as a script by test_engine_guard:

    python host_flow.py URL STATE_DIR NOTES guard|run_flow

host_before, our upgrade flow (with the fault plugins, so MDF_FAULT can
kill it), host_after; each host task appends its name to NOTES. The
last line on stdout is a JSON document: resumed, and the database's
revision.
"""
from __future__ import annotations

import json
import sys

from taskflow import task
from taskflow.patterns import linear_flow

from mistral_db_flows import api
from mistral_db_flows import conf
from mistral_db_flows import engine_guard

FAULT_TASKS = ["fault_backup", "fault_check_branches", "fault_migrate",
               "fault_verify"]


class Note(task.Task):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name=name)
        self.path = path

    def execute(self) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(self.name + "\n")


def main(url: str, state_dir: str, notes: str, how: str) -> None:
    settings = conf.Settings(database_url=url, state_dir=state_dir,
                             tasks={"upgrade": FAULT_TASKS})
    flow = linear_flow.Flow("my-upgrade")
    flow.add(Note("host_before", notes), api.upgrade_flow(settings, "head"),
             Note("host_after", notes))
    if how == "guard":
        with engine_guard.guarding(flow, settings, target="045") as run:
            run.run(run.load())
            resumed = run.resumed
    else:
        resumed = api.run_flow(flow, settings, target="045").resumed
    print(json.dumps({"resumed": resumed,
                      "current": api.current(settings).revisions}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
