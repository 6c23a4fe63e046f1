"""Logging for one command, with the meaning oslo.log gives its options.

Log records go to stderr (warnings, our package's notices; everything
at INFO with ``verbose``, at DEBUG with ``debug``) and, when asked, to a
file (``log_file``, ``log_dir``) and syslog (``use_syslog``) at INFO
(DEBUG with ``debug``). ``log_config_append`` hands the records to a
Python logging configuration file instead, as oslo.log does. Every
password in a URL is hidden on the way.

The operator's messages (steps, results, the error line) are written
by :class:`console.Output` on stderr, not logged there; they are also
recorded under :data:`MESSAGES` so that a log file or syslog keeps the
whole story of a run.

oslo.log itself is not used: its set-up writes to stdout by default
(our results' stream), replaces every handler and would format without
our masking; see docs/dependencies.md.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from typing import Any, Callable, Iterator

from mistral_db_flows import exceptions

STDERR_FORMAT = "%(levelname)-5.5s [%(name)s] %(message)s"
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"
SYSLOG_FORMAT = "%(name)s %(levelname)s %(message)s"
# Without log_file, a log_dir holds <binary>.log (oslo.log's rule).
BINARY = "mistral-db-manage"
# The operator's messages, recorded for the file and syslog only.
MESSAGES = "mistral_db_flows.messages"
PACKAGE = "mistral_db_flows"


@dataclasses.dataclass(frozen=True)
class Targets:
    """Where log records go: oslo.log's options, by their names."""

    debug: bool = False
    verbose: bool = False
    log_file: str | None = None
    log_dir: str | None = None
    log_config_append: str | None = None
    use_syslog: bool = False
    syslog_log_facility: str = "LOG_USER"

    def log_path(self) -> str | None:
        """The log file, as oslo.log derives it from log_file/log_dir."""
        if self.log_file and self.log_dir:
            return os.path.join(self.log_dir, self.log_file)
        if self.log_dir:
            return os.path.join(self.log_dir, BINARY + ".log")
        return self.log_file or None


def record(level: int, text: str) -> None:
    """Keep an operator's message (already masked) in the log file and
    syslog, when there are any."""
    logger = logging.getLogger(MESSAGES)
    # Outside configured() nobody listens: Python's last-resort handler
    # would print the message a second time.
    if logger.handlers:
        logger.log(level, text)


class _Masking(logging.Formatter):
    def __init__(self, mask: Callable[[str], str], fmt: str) -> None:
        super().__init__(fmt)
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self._mask(super().format(record))


class _MaskRecords(logging.Filter):
    """Masks the message itself, for handlers whose formatter is not
    ours (those of a log_config_append file)."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self._mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._mask(record.getMessage())
        record.args = None
        return True


class _ForStderr(logging.Filter):
    """What stderr shows of the log records besides the operator's
    messages (which console.Output writes there itself)."""

    def __init__(self, targets: Targets) -> None:
        super().__init__()
        self._targets = targets

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == MESSAGES:
            return False
        if self._targets.debug or record.levelno >= logging.WARNING:
            return True
        if record.levelno < logging.INFO:
            return False
        # Our notices (a retry, a replaced plugin) always; other
        # libraries' INFO lines (Alembic's "Running upgrade") only
        # with --verbose.
        return self._targets.verbose or record.name == PACKAGE or \
            record.name.startswith(PACKAGE + ".")


class _NoTracebacks(logging.Filter):
    """Drops log records that carry a traceback; --debug keeps them.

    They are libraries telling of an exception that reaches main() and
    is reported there in one line: TaskFlow logs a failed revert with
    its traceback, oslo.utils writes one into its message.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info or record.stack_info or
                    "Traceback (most recent call last)"
                    in record.getMessage())


class _QuietAlembic(logging.Filter):
    """Drops what Alembic logs at INFO about its own set-up: the two
    lines per revision about its context (one step per revision makes
    them repeat 45 times) and the plugins it loads; --debug keeps them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        if record.name == "alembic.runtime.plugins":
            return False
        return not (record.name == "alembic.runtime.migration"
                    and str(record.msg).startswith(("Context impl",
                                                    "Will assume")))


class _StderrHandler(logging.StreamHandler):
    """Writes to the sys.stderr of the moment (pytest swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        del value


class SyslogHandler(logging.Handler):
    """Records to the local syslog through libc, as oslo.log does: it
    never fails when no syslog daemon listens."""

    def __init__(self, facility: int) -> None:
        super().__init__()
        import syslog

        self._syslog = syslog
        self.facility = facility
        syslog.openlog(BINARY, 0, facility)

    def emit(self, record: logging.LogRecord) -> None:
        priority = {logging.DEBUG: self._syslog.LOG_DEBUG,
                    logging.INFO: self._syslog.LOG_INFO,
                    logging.WARNING: self._syslog.LOG_WARNING,
                    logging.ERROR: self._syslog.LOG_ERR}.get(
                        record.levelno, self._syslog.LOG_CRIT)
        try:
            self._syslog.syslog(priority, self.format(record))
        except Exception:
            self.handleError(record)


def _facility(name: str) -> int:
    import syslog

    key = name.upper()
    key = key if key.startswith("LOG_") else "LOG_" + key
    value = getattr(syslog, key, None)
    if not isinstance(value, int):
        raise exceptions.ConfigError(
            "syslog_log_facility %r is not a syslog facility (e.g. "
            "LOG_USER, LOG_LOCAL0)" % name)
    return value


def _file_handler(path: str) -> logging.Handler:
    import logging.handlers

    try:
        # Watched, like oslo.log's: logrotate may move the file away.
        return logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise exceptions.ConfigError(
            "log file %s cannot be opened: %s (check log_file and "
            "log_dir)" % (path, exc.strerror or exc), path) from None


def _append_config(path: str, mask: Callable[[str], str]) -> None:
    import configparser
    import logging.config

    if not os.path.isfile(path):
        raise exceptions.ConfigError(
            "logging config file %s cannot be read (check "
            "log_config_append)" % path, path)
    try:
        logging.config.fileConfig(path, disable_existing_loggers=False)
    except (configparser.Error, KeyError, ValueError, TypeError,
            AttributeError, ImportError, OSError) as exc:
        raise exceptions.ConfigError(
            "logging config file %s is not a logging configuration: %s"
            % (path, exc), path) from None
    for handler in logging.getLogger().handlers:
        handler.addFilter(_MaskRecords(mask))


def _our_handlers(targets: Targets, mask: Callable[[str], str]
                  ) -> tuple[list[logging.Handler], list[logging.Handler]]:
    """The handlers of stderr, and of the file and syslog."""
    stderr = _StderrHandler()
    stderr.setFormatter(_Masking(mask, STDERR_FORMAT))
    stderr.addFilter(_ForStderr(targets))
    if not targets.debug:
        stderr.addFilter(_NoTracebacks())
    kept: list[logging.Handler] = []
    # A bad facility is refused before the log file is opened.
    facility = (_facility(targets.syslog_log_facility)
                if targets.use_syslog else None)
    path = targets.log_path()
    if path:
        kept.append(_file_handler(path))
        kept[-1].setFormatter(_Masking(mask, FILE_FORMAT))
    if facility is not None:
        kept.append(SyslogHandler(facility))
        kept[-1].setFormatter(_Masking(mask, SYSLOG_FORMAT))
    for handler in [stderr] + kept:
        if not targets.debug:
            handler.addFilter(_QuietAlembic())
    return [stderr], kept


@contextlib.contextmanager
def configured(targets: Targets, mask: Callable[[str], str]
               ) -> Iterator[None]:
    """Logging as ``targets`` say for the body (one command); everything
    is put back afterwards. ConfigError (before the body) for a log file
    that cannot be opened or a bad logging config file."""
    root = logging.getLogger()
    messages = logging.getLogger(MESSAGES)
    saved_handlers = list(root.handlers)
    saved = {name: (logging.getLogger(name).level,
                    logging.getLogger(name).propagate)
             for name in ("", PACKAGE, MESSAGES)}
    added: list[logging.Handler] = []
    recorders: list[logging.Handler] = [logging.NullHandler()]
    try:
        if targets.log_config_append:
            _append_config(targets.log_config_append, mask)
        else:
            stderr, kept = _our_handlers(targets, mask)
            added = stderr + kept
            recorders += kept
            root.setLevel(logging.DEBUG if targets.debug else logging.INFO)
            logging.getLogger(PACKAGE).setLevel(logging.NOTSET)
            for handler in added:
                root.addHandler(handler)
        # The operator's messages reach the file and syslog only (they
        # are on stderr already); the null handler keeps Python's
        # last-resort handler from printing them a second time.
        messages.propagate = False
        for handler in recorders:
            messages.addHandler(handler)
        # Library warnings become log records, masked like the rest.
        logging.captureWarnings(True)
        yield
    finally:
        logging.captureWarnings(False)
        for handler in recorders:
            messages.removeHandler(handler)
        for handler in list(root.handlers):
            if handler not in saved_handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in saved_handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        for name, (level, propagate) in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).propagate = propagate
