"""Embed Mistral's database upgrade in your own TaskFlow flow.

Your deployment tool stops the services, upgrades the database, then
starts them again: one flow, one engine. If a step fails, TaskFlow
reverts the steps before it (here: the services come back up).

    python3 embed_upgrade.py [path/to/mistral.sqlite]
"""
import os
import sys

import taskflow.engines
from taskflow import task
from taskflow.patterns import linear_flow

from mistral_db_flows import api
from mistral_db_flows import conf


class StopServices(task.Task):
    def execute(self):
        print("stopping the Mistral services (pretend)")

    def revert(self, *args, **kwargs):
        print("starting the old Mistral services again (pretend)")


class StartServices(task.Task):
    def execute(self):
        print("starting the Mistral services (pretend)")


def main() -> None:
    path = os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                           else "mistral.sqlite")
    settings = conf.Settings(database_url="sqlite:///" + path)

    flow = linear_flow.Flow("my-mistral-upgrade")
    flow.add(StopServices("stop_services"),
             api.upgrade_flow(settings, "head"),
             StartServices("start_services"))
    taskflow.engines.load(flow, engine="serial").run()

    print("database now at:", " ".join(api.current(settings).lines()))


if __name__ == "__main__":
    main()
