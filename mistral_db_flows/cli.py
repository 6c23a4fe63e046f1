"""``mistral-db-manage``: parse, call one api function, render, exit.

This is the only module that parses arguments, prints errors or decides
exit codes. Everything it runs lives in ``api``; every failure the
operator can act on is an ``exceptions.MistralDbError`` whose
``exit_code`` becomes the process exit code, with one line on stderr.

Start-up time matters (operators run ``current`` in loops and
health checks), so nothing heavier than oslo.config is imported at module
level: ``api`` is imported by the command that needs it.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import logging
import os
import sys
import traceback
from typing import Any, Callable, NoReturn

from oslo_config import cfg

import mistral_db_flows
from mistral_db_flows import conf
from mistral_db_flows import console
from mistral_db_flows import exceptions

PROG = "mistral-db-manage"
FORMATS = ("text", "json")


# -- argument parsing ------------------------------------------------------

def _add_sql_refusal(parser: argparse.ArgumentParser) -> None:
    # Accepted only to refuse it with a message that says why, instead
    # of argparse's bare "unrecognized arguments".
    parser.add_argument("--sql", action="store_true", help=argparse.SUPPRESS)


def _args_current(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also show the parent revision, its "
                        "description and the (password-masked) URL")
    _add_sql_refusal(parser)


def _revision_and_sql(parser: argparse.ArgumentParser, revision: str,
                      sql: str) -> None:
    parser.add_argument("revision", nargs="?", help=revision)
    parser.add_argument("--sql", action="store_true", help=sql)


def _args_safety(parser: argparse.ArgumentParser) -> None:
    """Options of every command that changes the database."""
    parser.add_argument("--on-failure", dest="on_failure",
                        choices=conf.ON_FAILURE_CHOICES,
                        help="revert (default): restore the backup when a "
                        "step fails; stop: leave the database as it is "
                        "for inspection and a later resume")
    parser.add_argument("--no-backup", dest="no_backup",
                        action="store_true",
                        help="take no backup (you keep your own); a "
                        "failure then stops instead of reverting")


def _args_upgrade(parser: argparse.ArgumentParser) -> None:
    _revision_and_sql(parser, "head, a revision id (e.g. 030), +N, or "
                      "START:END with --sql", "print the SQL script on "
                      "stdout instead of running it (offline mode)")
    parser.add_argument("--delta", type=int,
                        help="upgrade by N revisions (same as +N)")
    _args_safety(parser)


def _args_stamp(parser: argparse.ArgumentParser) -> None:
    _revision_and_sql(parser, "revision to record (head or an id); "
                      "required", "print the SQL instead of running it")
    _args_safety(parser)


def _args_populate(parser: argparse.ArgumentParser) -> None:
    _add_sql_refusal(parser)
    _args_safety(parser)


def _args_revision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--message", help="what the revision "
                        "changes (becomes the first docstring line)")
    parser.add_argument("--autogenerate", action="store_true",
                        help="fill the revision from the difference "
                        "between the models and the database")
    parser.add_argument("--rev-id", dest="rev_id",
                        help="revision id to use (default: next number)")


def _no_args(parser: argparse.ArgumentParser) -> None:
    del parser


@dataclasses.dataclass(frozen=True)
class Command:
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Any, Any, console.Output], int]


# Filled below, after the run_* functions; the order is the help order.
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
    opts.register_cli_opts([
        cfg.BoolOpt("debug", short="d", default=False,
                    help="Log at DEBUG level and print the traceback of "
                    "an error (passwords stay masked)."),
        cfg.StrOpt("format", default="text", choices=FORMATS,
                   help="Output format on stdout: text (default, like "
                   "upstream) or json (exactly one JSON document)."),
    ])
    opts.register_cli_opt(cfg.SubCommandOpt(
        "command", title="Commands", help="Available commands",
        handler=_add_command_parsers))


def _parse(opts: cfg.ConfigOpts, argv: list[str]) -> int | None:
    """Parse argv and config files; an exit code when done already.

    argparse prints its usage block before the error; operators asked for
    one line, so stderr is captured and only the error line is kept.
    """
    captured = io.StringIO()
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


def _arg(args: Any, name: str, default: Any = None) -> Any:
    try:
        return getattr(args, name)
    except (AttributeError, cfg.NoSuchOptError):
        return default


# -- output ----------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def _report(out: console.Output, exc: BaseException, code: int,
            text: str) -> int:
    """The error's one line on stderr (and its JSON document); the
    traceback first with --debug."""
    text = _one_line(out.mask(text))
    if out.debug and not isinstance(exc, exceptions.UsageError):
        sys.stderr.write(out.mask("".join(
            traceback.format_exception(exc))))
    sys.stderr.write("%s: error: %s\n" % (PROG, text))
    if out.json and not out.documents:
        doc = {"type": type(exc).__name__, "message": text,
               "exit_code": code}
        run = _arg(exc, "run")
        if run is not None:
            doc["run"] = _dict(run)
        out.document({"error": doc})
    return code


def _dict(result: Any) -> Any:
    return result.to_dict() if hasattr(result, "to_dict") else result


def _finish_run(result: Any, out: console.Output,
                sql: str | None = None) -> int:
    """A run the api returned: it succeeded (a failed one raises
    StepFailed, which carries its Run to the error document)."""
    if out.json:
        doc = _dict(result)
        if sql is not None:
            doc["sql"] = sql
        out.document(doc)
    # Like upstream, populate prints nothing on stdout; its report and
    # the summary go with the other messages.
    for line in result.lines():
        out.message(line)
    return exceptions.ExitCode.OK


def _render(result: Any, out: console.Output,
            lines: list[str] | None = None) -> int:
    """``result`` as a JSON document, else its text lines on stdout."""
    if out.json:
        out.document(_dict(result))
        return exceptions.ExitCode.OK
    for line in result.lines() if lines is None else lines:
        out.line(line)
    return exceptions.ExitCode.OK


# -- commands --------------------------------------------------------------

def _api():
    from mistral_db_flows import api

    return api


def run_current(args: Any, settings: Any, out: console.Output) -> int:
    api = _api()
    result = api.current(settings)
    if _arg(args, "verbose") and not out.json:
        from mistral_db_flows import urls

        return _render(result, out, result.verbose_lines(
            urls.masked(settings.database_url), api.history(settings)))
    return _render(result, out)


def _run_revision_list(infos: list[Any], out: console.Output,
                       branches: bool = False) -> int:
    if out.json:
        out.document({"revisions": [_dict(info) for info in infos]})
        return exceptions.ExitCode.OK
    for info in infos:
        for line in info.lines(children=branches):
            out.line(line)
    return exceptions.ExitCode.OK


def run_history(args: Any, settings: Any, out: console.Output) -> int:
    return _run_revision_list(_api().history(settings), out)


def run_branches(args: Any, settings: Any, out: console.Output) -> int:
    return _run_revision_list(_api().branches(settings), out, True)


def run_check_migration(args: Any, settings: Any,
                        out: console.Output) -> int:
    return _render(_api().check_migration(settings), out)


def run_status(args: Any, settings: Any, out: console.Output) -> int:
    result = _api().status(settings)
    _render(result, out)
    if result.upgrade_needed:
        return exceptions.ExitCode.UPGRADE_NEEDED
    return exceptions.ExitCode.OK


def _with_safety(args: Any, settings: Any, out: console.Output) -> Any:
    """Settings with this command's --on-failure / --no-backup."""
    changes = {}
    if _arg(args, "on_failure"):
        changes["on_failure"] = args.on_failure
    if _arg(args, "no_backup"):
        changes["backup"] = False
        out.message("%s: warning: --no-backup: no backup is taken, so a "
                    "failure stops and leaves the database as it is"
                    % PROG)
    return dataclasses.replace(settings, **changes) if changes \
        else settings


def run_upgrade(args: Any, settings: Any, out: console.Output) -> int:
    target, delta = _arg(args, "revision"), _arg(args, "delta")
    if target is None and delta is None:
        raise exceptions.UsageError(
            "You must provide a revision or relative delta (e.g. 'upgrade "
            "head', 'upgrade 030', 'upgrade +1' or 'upgrade --delta 1')")
    if target is not None and delta is not None:
        raise exceptions.UsageError(
            "give either a revision or --delta, not both")
    settings = _with_safety(args, settings, out)
    return _offline_or_online(
        lambda **kw: _api().upgrade(settings, target, delta=delta, **kw),
        args, out)


def run_stamp(args: Any, settings: Any, out: console.Output) -> int:
    revision = _arg(args, "revision")
    if not revision:
        # Upstream empties the version table here; never do that.
        raise exceptions.UsageError(
            "stamp needs a revision (e.g. 'stamp head'); nothing was "
            "changed")
    settings = _with_safety(args, settings, out)
    return _offline_or_online(
        lambda **kw: _api().stamp(settings, revision, **kw), args, out)


def _offline_or_online(call: Callable[..., Any], args: Any,
                       out: console.Output) -> int:
    if not _arg(args, "sql"):
        return _finish_run(call(progress=out.progress), out)
    if out.json:
        buffer = io.StringIO()
        result = call(sql=True, output=buffer)
        return _finish_run(result, out, sql=buffer.getvalue())
    result = call(sql=True, output=out.stdout)
    return _finish_run(result, out)


def run_revision(args: Any, settings: Any, out: console.Output) -> int:
    message = _arg(args, "message")
    if not message:
        raise exceptions.UsageError(
            "revision needs a message: -m 'what it changes'")
    result = _api().revision(settings, message,
                             autogenerate=bool(_arg(args, "autogenerate")),
                             rev_id=_arg(args, "rev_id"))
    if out.json:
        out.document(_dict(result))
    else:
        out.line(str(_arg(result, "path", "")))
        out.message("revision: generated %s" % result.revision)
    return exceptions.ExitCode.OK


def _run_operation(name: str) -> Callable[[Any, Any, console.Output], int]:
    def run(args: Any, settings: Any, out: console.Output) -> int:
        settings = _with_safety(args, settings, out)
        return _finish_run(getattr(_api(), name)(
            settings, progress=out.progress), out)

    run.__name__ = "run_" + name
    return run


def run_verify(args: Any, settings: Any, out: console.Output) -> int:
    return _finish_run(_api().verify(settings, progress=out.progress), out)


def run_abandon(args: Any, settings: Any, out: console.Output) -> int:
    forgotten = _api().abandon(settings)
    if out.json:
        out.document({"abandoned": forgotten})
    elif forgotten:
        out.message("abandoned the interrupted %s (stopped at step %s); "
                    "the database was left as it is"
                    % (forgotten["operation"], forgotten["step"]))
    else:
        out.message("no interrupted run to abandon")
    return exceptions.ExitCode.OK


COMMANDS.update({
    "current": Command("show the revision the database is at",
                       _args_current, run_current),
    "history": Command("list revisions, newest first", _no_args,
                       run_history),
    "branches": Command("list branch points (none in a sound chain)",
                        _no_args, run_branches),
    "check_migration": Command(
        "check the migrations form one unbroken chain with one head",
        _no_args, run_check_migration),
    "upgrade": Command("upgrade the database (or print the SQL)",
                       _args_upgrade, run_upgrade),
    "populate": Command("load Mistral's standard workflows and actions",
                        _args_populate, _run_operation("populate")),
    "populate_actions": Command("load Mistral's standard actions",
                                _args_populate,
                                _run_operation("populate_actions")),
    "stamp": Command("record a revision without running migrations",
                     _args_stamp, run_stamp),
    "revision": Command("write a new migration file", _args_revision,
                        run_revision),
    "status": Command("current revision, head, pending steps; exit 0 at "
                      "head, 10 when an upgrade is needed",
                      _add_sql_refusal, run_status),
    "verify": Command("compare the database with the schema of its "
                      "revision", _add_sql_refusal, run_verify),
    "abandon": Command("forget an interrupted run (the database is left "
                       "as it is)", _add_sql_refusal, run_abandon),
})

OFFLINE_COMMANDS = frozenset({"upgrade", "stamp"})


# -- errors ----------------------------------------------------------------

def _unwrap(exc: BaseException) -> BaseException:
    """The MistralDbError inside a TaskFlow WrappedFailure, if any."""
    if isinstance(exc, exceptions.MistralDbError):
        return exc
    if type(exc).__name__ == "WrappedFailure":
        for failure in exc:  # type: ignore[attr-defined]
            inner = getattr(failure, "exception", None)
            if isinstance(inner, exceptions.MistralDbError):
                return inner
    return exc


def _config_error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return "config file %s cannot be read: %s" % (
            exc.filename, exc.strerror or exc)
    if isinstance(exc, UnicodeDecodeError):
        return "a config file is not UTF-8 text: %s" % exc
    if isinstance(exc, cfg.ConfigFilesNotFoundError):
        return "config file not found: %s (check --config-file)" % \
            ", ".join(exc.config_files)
    if isinstance(exc, cfg.ConfigFilesPermissionDeniedError):
        return "config file not readable: %s (check its permissions)" % \
            ", ".join(exc.config_files)
    if isinstance(exc, cfg.ConfigDirNotFoundError):
        return "config directory not found: %s (check --config-dir)" % \
            exc.config_dir
    if isinstance(exc, cfg.ConfigFileParseError):
        return "config file %s cannot be parsed: %s" % \
            (exc.config_file, exc.msg)
    return "configuration: %s" % exc


def _handle(exc: BaseException, name: str, out: console.Output) -> int:
    """One line on stderr; the exit code the error names."""
    exc = _unwrap(exc)
    if isinstance(exc, KeyboardInterrupt):
        return _report(out, exc, exceptions.ExitCode.INTERRUPTED,
                       "interrupted")
    if isinstance(exc, exceptions.UsageError):
        # A mistake in the arguments: exit 2 for every command, status
        # included.
        return _report(out, exc, exc.exit_code, "%s (see '%s %s --help')"
                       % (exc, PROG, name))
    if isinstance(exc, cfg.Error):
        code = exceptions.ConfigError.exit_code
        text = _config_error_text(exc)
    elif isinstance(exc, exceptions.MistralDbError):
        # A StepFailed names the code of its cause or of a failed
        # restore; the text still names the step.
        code, text = exc.exit_code, str(exc)
    elif isinstance(exc, OSError) and _arg(exc, "filename"):
        code = exceptions.ExitCode.ERROR
        text = "%s: %s" % (exc.strerror or exc, exc.filename)
    else:
        code = exceptions.ExitCode.ERROR
        text = "unexpected %s: %s%s" % (
            type(exc).__name__, exc,
            "" if out.debug else " (run with --debug for the traceback)")
    if name == "status" and code != exceptions.ExitCode.OK:
        # status promises deployment tools 0 / 10 / 1 only.
        code = exceptions.ExitCode.ERROR
    return _report(out, exc, code, text)


# -- entry point -----------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit code (the console script exits)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = cfg.ConfigOpts()
    register_cli_opts(opts)
    conf.register_opts(opts)
    # Config files are only read here, so their errors come up here.
    try:
        code = _parse(opts, argv)
    except (cfg.Error, OSError, UnicodeDecodeError) as exc:
        out = console.Output("json" if _wants_json(argv) else "text",
                             False)
        return _report(out, exc, exceptions.ConfigError.exit_code,
                       _config_error_text(exc))
    if code is not None:
        return code
    name = opts.command.name
    fmt = _arg(opts.command, "command_format")
    out = console.Output(fmt or "text", False)
    try:
        out = console.Output(fmt or opts.format, opts.debug)
        out.add_url(opts.database.connection)
        out.add_url(getattr(opts, conf.GROUP).logbook_connection)
    except Exception as exc:  # a bad value in a config file
        return _handle(exc, name, out)
    with console.logging_to_stderr(out), \
            contextlib.redirect_stdout(sys.stderr):
        try:
            if _arg(opts.command, "sql") and name not in OFFLINE_COMMANDS:
                raise exceptions.UsageError(
                    "%s cannot run offline (--sql): it needs a live "
                    "database; run it without --sql" % name)
            settings = conf.settings_from_conf(opts)
            out.add_url(settings.database_url)
            out.add_url(settings.logbook_connection)
            return COMMANDS[name].run(opts.command, settings, out)
        except (Exception, KeyboardInterrupt) as exc:
            return _handle(exc, name, out)
        finally:
            out.close()


def console_main() -> NoReturn:
    """The console script: run one command, then leave at once.

    Tearing the interpreter down (freeing the modules of TaskFlow,
    SQLAlchemy and Alembic) costs 0.13-0.2 s, as much as a whole
    ``populate``; by the time ``main`` returns, every connection, the
    lock, the logbook and the backup files are closed, so only the
    buffered output and the log handlers are left to flush.
    """
    try:
        code: Any = main()
    except SystemExit as exc:  # argparse's --help and --version
        code = exc.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = exceptions.ExitCode.ERROR
    code = code or 0
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing to save
            pass
    os._exit(code)


def _wants_json(argv: list[str]) -> bool:
    """Before parsing succeeded: did the operator ask for JSON?"""
    for i, arg in enumerate(argv):
        if arg == "--format=json" or (
                arg == "--format" and argv[i + 1:i + 2] == ["json"]):
            return True
    return False
