"""What the operator sees while a command runs: results and messages.

``Output`` writes results on stdout (text or one JSON document) and
messages on stderr, every URL's password hidden; it draws the progress
of long steps (redrawn in place on a terminal, a line now and then
otherwise) and a heartbeat for steps that report none.
``logging_to_stderr`` routes library and package logging through the
same masking for the duration of one command (:mod:`logs` sets it up).

Without ``verbose`` a run is quiet: no line per step, only a step that
is slow (its running time, then its end), one that fails, a revert that
undid something and the summary; every step is still recorded in a log
file when there is one.

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

_EVENTS = {"running": "started", "success": "done", "failure": "failed",
           "reverting": "reverting", "reverted": "reverted",
           "revert_failure": "revert failed",
           "nothing_to_revert": "reverted (nothing to undo)"}
# Step ends shown without --verbose, however long they took.
_ALWAYS_SHOWN = ("failure", "revert_failure", "reverted")


PROGRESS_EVERY = 10.0  # seconds between progress lines off a terminal
HEARTBEAT_AFTER = 5.0  # a step silent this long shows its running time
SLOW_STEP = HEARTBEAT_AFTER  # a step this long shows its end line


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

    def __init__(self, fmt: str, debug: bool, verbose: bool = False
                 ) -> None:
        self.json = fmt == "json"
        self.debug = debug
        # A line per step start and end (--debug shows them too).
        self.verbose = verbose or debug
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
        self._running: tuple[str, float, str] | None = None
        # Steps a progress or heartbeat line was shown for: their end
        # line closes what the operator saw.
        self._noticed: set[str] = set()
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
        from mistral_db_flows import logs

        text = self.mask(text)
        sys.stderr.write(text + "\n")
        logs.record(logging.INFO, text)

    def progress(self, step: str, event: str, value: Any) -> None:
        """Step events on stderr (never on stdout): see the module's
        docstring for which are shown without --verbose.

        ``event`` ``"resuming"``: the run ``value`` continues at
        ``step``; ``"progress"``: a long step's progress in between.
        """
        with self._lock:
            if event == "progress":
                self._step_progress(step, value or {})
                return
            if event == "waiting":
                self._waiting(step, value or {})
                return
            self._clear_progress()
            if event == "resuming":
                self.message("resuming run %s at %s" % (
                    value, "step %s" % step if step else "its first step"))
                return
            # Off a terminal the first progress line comes
            # PROGRESS_EVERY seconds after the step started: short steps
            # print none.
            now = time.monotonic()
            self._last_progress[step] = now
            seconds = value
            if seconds is None:
                self._running = (step, now, event)
                self._start_ticker()
                self._step_line("%s: %s" % (step, _EVENTS.get(event, event)),
                                self.verbose)
            else:
                self._running = None
                shown = (self.verbose or event in _ALWAYS_SHOWN
                         or seconds >= SLOW_STEP or step in self._noticed)
                self._step_line("%s: %s in %.2f s" % (
                    step, _EVENTS.get(event, event), seconds), shown)

    def _step_line(self, text: str, shown: bool) -> None:
        """A step's line on stderr, or only in the log file (if any)."""
        from mistral_db_flows import logs

        if shown:
            self.message(text)
        else:
            logs.record(logging.INFO, self.mask(text))

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
            step, since, event = self._running
            if now - self._last_progress.get(step, since) < HEARTBEAT_AFTER:
                return
            text = "%s: %s for %d s" % (
                step, "reverting" if event == "reverting" else "running",
                now - since)
            if self.terminal:
                self._redraw(step, text)
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
            self._redraw(step, text)
            self._last_progress[step] = now
        else:
            self._now_and_then(step, text, now)

    def _waiting(self, step: str, details: dict) -> None:
        """What a step (or the run's lock) waits for, on its own line:
        the step already says it at once and every 10 s."""
        self._clear_progress()
        self._last_progress[step] = time.monotonic()
        self._noticed.add(step)  # its end is worth a line too
        self.message("%s: %s" % (step, details.get("text", "waiting")))

    def _redraw(self, step: str, text: str) -> None:
        """The terminal's progress line, drawn over the last one."""
        self._noticed.add(step)
        sys.stderr.write("\r\033[K" + self.mask(text))
        sys.stderr.flush()
        self._progress_shown = True

    def _now_and_then(self, step: str, text: str, now: float) -> None:
        """Off a terminal: a line at most every PROGRESS_EVERY seconds."""
        if now - self._last_progress.setdefault(step, now) >= PROGRESS_EVERY:
            self._last_progress[step] = now
            self._noticed.add(step)
            self.message(text)


@contextlib.contextmanager
def logging_to_stderr(output: Output,
                      targets: Any = None) -> Iterator[None]:
    """Log records on stderr (and where ``targets``, a
    :class:`logs.Targets`, say) for the duration of one main()."""
    from mistral_db_flows import logs

    if targets is None:
        targets = logs.Targets(debug=output.debug, verbose=output.verbose)
    with logs.configured(targets, output.mask):
        yield
