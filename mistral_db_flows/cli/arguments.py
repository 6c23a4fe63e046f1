"""The command line's words: global options, commands and their arguments.

``register_cli_opts`` declares them on an oslo.config ``ConfigOpts``;
``parse`` reads argv and the config files. The commands themselves are
in :mod:`commands`, which fills :data:`COMMANDS`.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import sys
from typing import Any, Callable

from oslo_config import cfg

import mistral_db_flows
from mistral_db_flows import conf
from mistral_db_flows import console
from mistral_db_flows import exceptions

PROG = "mistral-db-manage"
FORMATS = ("text", "json")
SHELL_COMPLETION = "shell_completion"


def add_sql_refusal(parser: argparse.ArgumentParser) -> None:
    # Accepted only to refuse it with a message that says why, instead
    # of argparse's bare "unrecognized arguments".
    parser.add_argument("--sql", action="store_true", help=argparse.SUPPRESS)


def args_current(parser: argparse.ArgumentParser) -> None:
    # dest differs from the global --verbose (logging): oslo.config
    # forbids sharing a name.
    parser.add_argument("--verbose", "-v", dest="show_details",
                        action="store_true",
                        help="also show the parent revision, its "
                        "description and the (password-masked) URL")
    add_sql_refusal(parser)


def revision_and_sql(parser: argparse.ArgumentParser, revision: str,
                      sql: str) -> None:
    parser.add_argument("revision", nargs="?", help=revision)
    parser.add_argument("--sql", action="store_true", help=sql)


def args_safety(parser: argparse.ArgumentParser) -> None:
    """Options of every command that changes the database."""
    parser.add_argument("--on-failure", dest="on_failure",
                        choices=conf.ON_FAILURE_CHOICES,
                        help="revert (default): undo the run's steps when "
                        "one fails; stop: leave the database as it is "
                        "for inspection and a later resume")
    parser.add_argument("--backup", dest="backup",
                        choices=conf.BACKUP_CHOICES,
                        help="steps (default): each step reverts itself; "
                        "full: also a full dump before the run; none: "
                        "keep nothing (as --no-backup)")
    parser.add_argument("--no-backup", dest="no_backup",
                        action="store_true",
                        help="keep nothing to revert with (you keep your "
                        "own backups); a failure then stops instead of "
                        "reverting")
    parser.add_argument("--refuse-if-connected",
                        dest="refuse_if_connected", action="store_true",
                        help="refuse to start (exit 14) while other "
                        "sessions are connected to the database")


def args_upgrade(parser: argparse.ArgumentParser) -> None:
    revision_and_sql(parser, "head, a revision id (e.g. 030), +N, or "
                      "START:END with --sql", "print the SQL script on "
                      "stdout instead of running it (offline mode)")
    parser.add_argument("--delta", type=int,
                        help="upgrade by N revisions (same as +N)")
    parser.add_argument("--keep-revert-data", dest="keep_revert_data",
                        action="store_true",
                        help="keep the steps' revert data after success "
                        "so that `downgrade` can undo revisions that "
                        "destroyed or rewrote data ([db_manage] "
                        "keep_revert_data)")
    args_safety(parser)


def args_downgrade(parser: argparse.ArgumentParser) -> None:
    revision_and_sql(parser, "an older revision id (e.g. 040), base, or "
                      "-N; START:END with --sql", "print the SQL script "
                      "of a schema-only range instead of running it")
    args_safety(parser)


def args_stamp(parser: argparse.ArgumentParser) -> None:
    revision_and_sql(parser, "revision to record (head or an id); "
                      "required", "print the SQL instead of running it")
    args_safety(parser)


def args_populate(parser: argparse.ArgumentParser) -> None:
    add_sql_refusal(parser)
    args_safety(parser)


def args_populate_workflows(parser: argparse.ArgumentParser) -> None:
    args_populate(parser)
    parser.add_argument("--remove-missing", dest="remove_missing",
                        action="store_true",
                        help="delete system workflows no definition "
                        "source loaded here defines (default: keep and "
                        "list them; Mistral's own environment may "
                        "provide them)")


def args_revision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--message", help="what the revision "
                        "changes (becomes the first docstring line)")
    parser.add_argument("--autogenerate", action="store_true",
                        help="fill the revision from the difference "
                        "between the models and the database")
    parser.add_argument("--rev-id", dest="rev_id",
                        help="revision id to use (default: next number)")


def no_args(parser: argparse.ArgumentParser) -> None:
    del parser


@dataclasses.dataclass(frozen=True)
class Command:
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Any, Any, console.Output], int]
    # run() gets the whole ConfigOpts (its config files too), not only
    # the command's own arguments.
    whole_config: bool = False


# Filled by the commands module; the order is the help order.
COMMANDS: dict[str, Command] = {}


def _add_command_parsers(subparsers: Any) -> None:
    for name, command in COMMANDS.items():
        parser = subparsers.add_parser(name, help=command.help,
                                       description=command.help)
        # Also accepted after the command; dest differs from the global
        # option because oslo.config forbids sharing a name.
        parser.add_argument("--format", dest="command_format",
                            choices=FORMATS, help="same as the global "
                            "--format")
        command.arguments(parser)


def register_cli_opts(opts: cfg.ConfigOpts) -> None:
    # oslo.config offers --shell_completion, but its release ships no
    # completion template (the option fails): not offered.
    opts.unregister_opt(cfg.StrOpt(SHELL_COMPLETION))
    opts.register_cli_opts(conf.logging_opts)
    opts.register_cli_opts([
        cfg.StrOpt("format", default="text", choices=FORMATS,
                   help="Output format on stdout: text (default, like "
                   "upstream) or json (exactly one JSON document)."),
    ])
    opts.register_cli_opt(cfg.SubCommandOpt(
        "command", title="Commands", help="Available commands",
        handler=_add_command_parsers))


def parse(opts: cfg.ConfigOpts, argv: list[str]) -> int | None:
    """Parse argv and config files; an exit code when done already.

    argparse prints its usage block before the error; operators asked for
    one line, so stderr is captured and only the error line is kept.
    """
    captured = io.StringIO()
    if argv[:1] == ["--" + SHELL_COMPLETION]:
        # oslo.config acts on it before parsing, even unregistered.
        sys.stderr.write("%s: error: unrecognized arguments: --%s (see "
                         "'%s --help')\n" % (PROG, SHELL_COMPLETION, PROG))
        return exceptions.ExitCode.USAGE
    try:
        with contextlib.redirect_stderr(captured):
            opts(argv, project="mistral", prog=PROG,
                 version=mistral_db_flows.__version__)
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is None:
            code = exceptions.ExitCode.OK
        else:
            code = exceptions.ExitCode.USAGE
        if code == exceptions.ExitCode.OK:
            sys.stderr.write(captured.getvalue())
            return code
        lines = captured.getvalue().strip().splitlines() or ["bad usage"]
        prog, _, message = lines[-1].rpartition(": error: ")
        sys.stderr.write("%s: error: %s (see '%s --help')\n"
                         % (PROG, message, prog or PROG))
        return exceptions.ExitCode.USAGE
    return None


def arg(args: Any, name: str, default: Any = None) -> Any:
    try:
        return getattr(args, name)
    except (AttributeError, cfg.NoSuchOptError):
        return default
