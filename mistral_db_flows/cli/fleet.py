"""The fleet commands: ``conductor`` and ``post`` (docs/fleet.md).

Their work is in :mod:`mistral_db_flows.fleet.service`; here are their
arguments, the conductor's signal handling (the first SIGTERM or SIGINT
stops claiming and lets the running job end; a second one interrupts
it, and its claim lapses for another conductor to resume) and the
rendering of a posted job.
"""
from __future__ import annotations

import argparse
import os
import signal
from typing import Any

from mistral_db_flows import console
from mistral_db_flows import exceptions
from mistral_db_flows.cli import arguments

_arg = arguments.arg
OPERATIONS = ("upgrade", "stamp", "populate", "verify")


def _args_board(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobboard", required=True,
                        help="the Redis jobboard: redis://HOST:PORT/DB")
    parser.add_argument("--board", required=True,
                        help="the board's name (its keys' namespace)")


def args_conductor(parser: argparse.ArgumentParser) -> None:
    _args_board(parser)
    parser.add_argument("--targets-dir", dest="targets_dir", required=True,
                        help="directory of <target>.conf files, each "
                        "giving a target's [database] connection")
    parser.add_argument("--claim-expiry", dest="claim_expiry", type=float,
                        help="seconds a claim outlives this conductor "
                        "(default 10); a heartbeat renews it while a job "
                        "runs")


def args_post(parser: argparse.ArgumentParser) -> None:
    _args_board(parser)
    parser.add_argument("--target", required=True,
                        help="the target's name (a <target>.conf on the "
                        "conductors)")
    parser.add_argument("--wait", action="store_true",
                        help="wait for the job and exit as the command "
                        "would have")
    parser.add_argument("--timeout", type=float,
                        help="with --wait: give up waiting after this "
                        "many seconds (exit 1; the job stays posted)")
    parser.add_argument("operation", choices=OPERATIONS,
                        help="what the job does")
    parser.add_argument("argument", nargs="?",
                        help="the revision of upgrade and stamp")


def _service():
    from mistral_db_flows.fleet import service

    return service


def run_post(opts: Any, settings: Any, out: console.Output) -> int:
    args = opts.command
    posted = _service().post(
        settings, args.jobboard, args.board, args.target, args.operation,
        _arg(args, "argument"), wait=bool(_arg(args, "wait")),
        timeout=_arg(args, "timeout"))
    if out.json:
        out.document(posted.to_dict())
    else:
        for line in posted.lines():
            out.message(line)
    return exceptions.ExitCode.OK


def _host(opts: Any) -> Any:
    from mistral_db_flows.fleet import hosts

    targets_dir = os.path.abspath(opts.command.targets_dir)
    if not os.path.isdir(targets_dir):
        raise exceptions.UsageError(
            "--targets-dir %s is not a directory" % targets_dir)
    return hosts.Host(
        targets_dir=targets_dir,
        config_files=tuple(os.path.abspath(p)
                           for p in _arg(opts, "config_file") or ()),
        config_dirs=tuple(os.path.abspath(p)
                          for p in _arg(opts, "config_dir") or ()))


def run_conductor(opts: Any, settings: Any, out: console.Output) -> int:
    args = opts.command
    with _service().conducting(
            settings, args.jobboard, args.board, _host(opts),
            claim_expiry=_arg(args, "claim_expiry")) as conductor:
        stops = []

        def stop(signum: int, frame: Any) -> None:
            stops.append(signum)
            if len(stops) > 1:
                raise KeyboardInterrupt
            out.message("%s: stopping: no new jobs; the running job "
                        "ends first (signal again to interrupt it)"
                        % arguments.PROG)
            conductor.stop()

        saved = {sig: signal.signal(sig, stop)
                 for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            out.message("%s: conductor %s on board %s"
                        % (arguments.PROG, conductor.name,
                           args.board))
            conductor.run()
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
    return exceptions.ExitCode.OK


arguments.COMMANDS.update({
    "conductor": arguments.Command(
        "run fleet jobs from a Redis jobboard until SIGTERM/SIGINT",
        args_conductor, run_conductor, whole_config=True),
    "post": arguments.Command(
        "post a fleet job (upgrade REV, stamp REV, populate, verify)",
        args_post, run_post, whole_config=True),
})
