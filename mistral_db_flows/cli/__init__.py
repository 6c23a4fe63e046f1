"""``mistral-db-manage``: parse, call one api function, render, exit.

This package is the only place that parses arguments, prints errors or
decides exit codes: ``arguments`` declares and parses the command line,
``commands`` runs one api function per command and renders its result,
and this module maps errors to exit codes and is the entry point.
Everything a command runs lives in ``api``; every failure the
operator can act on is an ``exceptions.MistralDbError`` whose
``exit_code`` becomes the process exit code, with one line on stderr.

Start-up time matters (operators run ``current`` in loops and
health checks), so nothing heavier than oslo.config is imported at module
level: ``api`` is imported by the command that needs it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from typing import Any, NoReturn

from oslo_config import cfg

from mistral_db_flows import conf
from mistral_db_flows import console
from mistral_db_flows import exceptions
from mistral_db_flows import logs
from mistral_db_flows.cli import arguments
from mistral_db_flows.cli import commands
from mistral_db_flows.cli import fleet  # noqa: F401  (fills COMMANDS)
from mistral_db_flows.cli import signals

PROG = arguments.PROG
COMMANDS = arguments.COMMANDS
_arg = arguments.arg


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
    logs.record(logging.ERROR, "error: %s" % text)
    if out.json and not out.documents:
        doc = {"type": type(exc).__name__, "message": text,
               "exit_code": code}
        run = _arg(exc, "run")
        if run is not None:
            doc["run"] = commands.to_dict(run)
        out.document({"error": doc})
    return code


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


# The commands whose interrupted run the same command resumes.
_RESUMABLE = frozenset({"upgrade", "stamp", "populate", "populate_actions"})


def _interrupted(exc: BaseException, name: str, out: console.Output,
                 received: signals.Received | None) -> int:
    """Exit 143 after SIGTERM, 130 after SIGINT (Ctrl-C), saying how to
    go on."""
    code = exceptions.ExitCode.INTERRUPTED
    text = "interrupted"
    if received is not None and received.signum is not None:
        text = "interrupted by %s" % received.name
        if received.name == "SIGTERM":
            code = exceptions.ExitCode.TERMINATED
    from mistral_db_flows import locking

    if locking.stopped_waiting(exc):
        # No run of this command had started: nothing to resume.
        text += ("; it was waiting for another run's lock and changed "
                 "nothing (its wait on the server was cancelled). Run the "
                 "command again once that run has ended")
    elif name in _RESUMABLE:
        text += ("; what it was running on the server was cancelled. Run "
                 "the same command to resume, or `%s abandon`" % PROG)
    return _report(out, exc, code, text)


def _handle(exc: BaseException, name: str, out: console.Output,
            received: signals.Received | None = None) -> int:
    """One line on stderr; the exit code the error names."""
    exc = _unwrap(exc)
    if isinstance(exc, BrokenPipeError):
        return _closed_stdout(out.stdout)
    if isinstance(exc, KeyboardInterrupt) or (
            received is not None and received.signum is not None):
        # After a signal, whatever the cancel made fail is the signal.
        return _interrupted(exc, name, out, received)
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


def _closed_stdout(stdout: Any) -> int:
    """stdout's reader went away (``... | head -1``): end quietly, as
    a shell command killed by SIGPIPE would (the shell says 141).

    Whatever was still buffered for stdout is dropped: it would fail
    again when the interpreter flushes it.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # pytest's capture has no file descriptor
    return exceptions.ExitCode.BROKEN_PIPE


# -- entry point -----------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit code (the console script exits)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = cfg.ConfigOpts()
    arguments.register_cli_opts(opts)
    conf.register_opts(opts)
    # Config files are only read here, so their errors come up here.
    try:
        code = arguments.parse(opts, argv)
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
        out = console.Output(fmt or opts.format, opts.debug, opts.verbose)
        out.add_url(opts.database.connection)
        out.add_url(getattr(opts, conf.GROUP).logbook_connection)
        targets = _log_targets(opts)
    except Exception as exc:  # a bad value in a config file
        return _handle(exc, name, out)
    received: signals.Received | None = None
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(console.logging_to_stderr(out, targets))
        except exceptions.ConfigError as exc:  # no log file, bad ini
            return _handle(exc, name, out)
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        try:
            if _arg(opts.command, "sql") and \
                    name not in commands.OFFLINE_COMMANDS:
                raise exceptions.UsageError(
                    "%s cannot run offline (--sql): it needs a live "
                    "database; run it without --sql" % name)
            settings = conf.settings_from_conf(opts)
            out.add_url(settings.database_url)
            out.add_url(settings.logbook_connection)
            command = COMMANDS[name]
            with signals.cancelling(_cancel) as received:
                return command.run(opts if command.whole_config
                                   else opts.command, settings, out)
        except (Exception, KeyboardInterrupt) as exc:
            return _handle(exc, name, out, received)
        finally:
            out.close()


def _cancel() -> None:
    commands._api().cancel()


def _log_targets(opts: cfg.ConfigOpts) -> logs.Targets:
    return logs.Targets(
        debug=opts.debug, verbose=opts.verbose, log_file=opts.log_file,
        log_dir=opts.log_dir, log_config_append=opts.log_config_append,
        use_syslog=opts.use_syslog,
        syslog_log_facility=opts.syslog_log_facility)


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
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or _closed_stdout(sys.stdout)
    except (OSError, ValueError):
        pass
    try:
        sys.stderr.flush()
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
