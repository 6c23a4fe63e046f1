"""What the operator sees while a command runs: results and messages.

``Output`` writes results on stdout (text or one JSON document) and
messages on stderr, every URL's password hidden; it draws the progress
of long steps (redrawn in place on a terminal, a line now and then
otherwise) and a heartbeat for steps that report none.
``logging_to_stderr`` routes library and package logging through the
same masking for the duration of one command.

Nothing here parses arguments, decides an exit code or imports a heavy
library: ``cli`` does the former, and ``--help`` must stay fast.
"""
from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from typing import Any, Iterator

LOG_FORMAT = "%(levelname)-5.5s [%(name)s] %(message)s"

_EVENTS = {"running": "started", "success": "done", "failure": "failed",
           "reverting": "reverting", "reverted": "reverted",
           "revert_failure": "revert failed"}


PROGRESS_EVERY = 10.0  # seconds between progress lines off a terminal
HEARTBEAT_AFTER = 5.0  # a step silent this long shows its running time


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (count, unit)
        count /= 1024
    return "%d B" % count


class Output:
    """Where results (stdout) and messages (stderr) go, masked."""

    def __init__(self, fmt: str, debug: bool) -> None:
        self.json = fmt == "json"
        self.debug = debug
        # URLs whose passwords are hidden wherever the URL appears whole
        # (any other URL's by its syntax: see urls.mask_text).
        self.urls: set[str] = set()
        self.documents = 0
        # Results go here; while a command runs, sys.stdout points at
        # stderr so that no library chatter lands in the results.
        self.stdout = sys.stdout
        # In-step progress: redrawn in place on a terminal; otherwise
        # a plain line at most every PROGRESS_EVERY seconds per step.
        self.terminal = _is_terminal(sys.stderr)
        self._last_progress: dict[str, float] = {}
        self._progress_shown = False
        # A step without progress of its own (a long data migration)
        # still shows it is alive: see _heartbeat.
        self._running: tuple[str, float] | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def add_url(self, url: str | None) -> None:
        if url:
            self.urls.add(url)

    def mask(self, text: str) -> str:
        """``text`` with the password field of every URL in it hidden;
        nothing else is touched."""
        from mistral_db_flows import urls  # not for --help: start-up

        return urls.mask_text(text, self.urls)

    def line(self, text: str = "") -> None:
        self.stdout.write(self.mask(text) + "\n")

    def document(self, doc: Any) -> None:
        text = json.dumps(self._masked(doc), indent=2, default=str)
        self.stdout.write(text + "\n")
        self.documents += 1

    def _masked(self, value: Any) -> Any:
        """``value`` (a JSON document) with every string masked."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self._masked(k): self._masked(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._masked(v) for v in value]
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self.mask(str(value))

    def message(self, text: str) -> None:
        sys.stderr.write(self.mask(text) + "\n")

    def progress(self, step: str, event: str, value: Any) -> None:
        """One stderr line per step start and end (never on stdout);
        long steps' progress in between."""
        with self._lock:
            if event == "progress":
                self._step_progress(step, value or {})
                return
            if event == "waiting":
                self._waiting(step, value or {})
                return
            self._clear_progress()
            # Off a terminal the first progress line comes
            # PROGRESS_EVERY seconds after the step started: short steps
            # print none.
            now = time.monotonic()
            self._last_progress[step] = now
            seconds = value
            if seconds is None:
                self._running = (step, now)
                self._start_ticker()
                self.message("%s: %s" % (step, _EVENTS.get(event, event)))
            else:
                self._running = None
                self.message("%s: %s in %.2f s"
                             % (step, _EVENTS.get(event, event), seconds))

    def _clear_progress(self) -> None:
        if self._progress_shown:
            sys.stderr.write("\r\033[K")
            self._progress_shown = False

    def _start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick,
                                            name="step-heartbeat",
                                            daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self._heartbeat(time.monotonic())

    def _heartbeat(self, now: float) -> None:
        """A running step that reported nothing for a while: say how
        long it has been running (redrawn on a terminal, else a line
        every PROGRESS_EVERY seconds)."""
        with self._lock:
            if self._running is None:
                return
            step, since = self._running
            if now - self._last_progress.get(step, since) < HEARTBEAT_AFTER:
                return
            text = "%s: running for %d s" % (step, now - since)
            if self.terminal:
                self._redraw(text)
            else:
                self._now_and_then(step, text, now)

    def close(self) -> None:
        """Stop the heartbeat (the command is over)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            self._clear_progress()

    def _step_progress(self, step: str, details: dict) -> None:
        done, total = details.get("done"), details.get("total")
        if done is None:
            text = "%d%%" % round(100 * (details.get("progress") or 0))
        elif total:
            text = "%s of %s (%d%%)" % (_size(done), _size(total),
                                        min(100, round(100 * done / total)))
        else:
            text = "%s so far" % _size(done)
        text = "%s: %s" % (step, text)
        now = time.monotonic()
        if self.terminal:
            self._redraw(text)
            self._last_progress[step] = now
        else:
            self._now_and_then(step, text, now)

    def _waiting(self, step: str, details: dict) -> None:
        """What a step (or the run's lock) waits for, on its own line:
        the step already says it at once and every 10 s."""
        self._clear_progress()
        self._last_progress[step] = time.monotonic()
        self.message("%s: %s" % (step, details.get("text", "waiting")))

    def _redraw(self, text: str) -> None:
        """The terminal's progress line, drawn over the last one."""
        sys.stderr.write("\r\033[K" + self.mask(text))
        sys.stderr.flush()
        self._progress_shown = True

    def _now_and_then(self, step: str, text: str, now: float) -> None:
        """Off a terminal: a line at most every PROGRESS_EVERY seconds."""
        if now - self._last_progress.setdefault(step, now) >= PROGRESS_EVERY:
            self._last_progress[step] = now
            self.message(text)


class _MaskingFormatter(logging.Formatter):
    def __init__(self, output: Output) -> None:
        super().__init__(LOG_FORMAT)
        self._output = output

    def format(self, record: logging.LogRecord) -> str:
        return self._output.mask(super().format(record))


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
    """Drops the two lines Alembic logs per revision about its context.

    One step per revision makes them repeat 45 times; --debug keeps them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "alembic.runtime.migration"
                    and record.levelno == logging.INFO
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


@contextlib.contextmanager
def logging_to_stderr(output: Output) -> Iterator[None]:
    """Messages and progress on stderr for the duration of one main()."""
    handler = _StderrHandler()
    handler.setFormatter(_MaskingFormatter(output))
    if not output.debug:
        handler.addFilter(_QuietAlembic())
        handler.addFilter(_NoTracebacks())
    levels = {"": logging.DEBUG if output.debug else logging.WARNING,
              "mistral_db_flows": logging.DEBUG if output.debug
              else logging.INFO,
              # Its "Running upgrade A -> B" lines are what operators
              # know from upstream as progress.
              "alembic.runtime.migration": logging.DEBUG if output.debug
              else logging.INFO}
    saved = {name: logging.getLogger(name).level for name in levels}
    root = logging.getLogger()
    root.addHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    # Library warnings become log lines on stderr, masked like the rest.
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
