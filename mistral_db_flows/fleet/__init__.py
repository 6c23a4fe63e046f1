"""Fleet upgrades: jobs on a TaskFlow jobboard, run by conductors.

A job names a target (a database known to the conductors by name), an
operation and its argument; never a URL. Each conductor host keeps
``<targets_dir>/<target>.conf`` files with the targets' ``[database]
connection``; a conductor rebuilds a job's flow with
:func:`factory.flow_factory` and runs it as the command would (lock,
backup, resume from the shared logbook). Modules:

* ``hosts``: target names, and the Settings a host reads for a target;
* ``factory``: the conductor-ready flow factory and its one task;
* ``board``: the Redis jobboard, posting a job and waiting for it;
* ``conductor``: a conductor whose claims expire unless a heartbeat
  keeps them alive.

Nothing here is imported by the other commands; TaskFlow's jobboard and
``redis`` are imported only when a fleet command runs.
"""
