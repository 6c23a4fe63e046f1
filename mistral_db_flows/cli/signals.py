"""SIGTERM and SIGINT during a command: cancel on the server, then stop.

A run waiting on the server (an ``ALTER TABLE`` queued behind another
session's lock, a wait for the run lock) is inside the driver: Python
runs a signal handler only once that call returns, which a queued
statement may not do for a long time, and a process that simply died
would leave its statement queued on the server, blocking the table's
readers. So a signal is first heard by a thread (``set_wakeup_fd``
writes its number to a pipe the moment it arrives), which asks the
library to cancel what our sessions run (``api.cancel``); the driver
call then returns, and the handler raises ``KeyboardInterrupt`` in the
main thread. The run stops as a kill would stop it (its logbook record
stays ``running``: the same command resumes it) and ``cli`` exits 130
(SIGINT) or 143 (SIGTERM).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Callable, Iterator

# How long the handler waits for the server to confirm the cancel.
CANCEL_WAIT = 3.0

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Received:
    """The first signal a command received (None: none)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.cancelled = threading.Event()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


@contextlib.contextmanager
def cancelling(cancel: Callable[[], Any]) -> Iterator[Received]:
    """For the body, SIGINT and SIGTERM call ``cancel()`` at once (from
    a thread) and then interrupt the body with KeyboardInterrupt.

    Outside the main thread (an embedder's worker) signals cannot be
    handled: the body runs as it is.
    """
    received = Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    stop = threading.Event()

    def watch() -> None:
        while True:
            try:
                data = os.read(reader, 64)
            except OSError:
                return
            if stop.is_set() or not data:
                return
            if not received.cancelled.is_set() and any(
                    byte in (int(s) for s in _SIGNALS) for byte in data):
                try:
                    cancel()
                except Exception:  # the cancel is best effort
                    pass
                finally:
                    received.cancelled.set()

    def handler(signum: int, frame: Any) -> None:
        del frame
        if received.signum is not None:
            return  # one interruption is enough; SIGKILL remains
        received.signum = signum
        received.cancelled.wait(CANCEL_WAIT)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    watcher = threading.Thread(target=watch, name="signal-cancel",
                               daemon=True)
    watcher.start()
    saved = {s: signal.signal(s, handler) for s in _SIGNALS}
    old_fd = signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
    try:
        yield received
    finally:
        signal.set_wakeup_fd(old_fd)
        for signum, previous in saved.items():
            signal.signal(signum, previous)
        stop.set()
        with contextlib.suppress(OSError):
            os.write(writer, b"\0")
        watcher.join(1)
        os.close(writer)
        os.close(reader)
