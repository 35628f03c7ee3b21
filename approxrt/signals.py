"""`stop_on_signals`: SIGINT and SIGTERM ask a run to stop, so nothing is lost.

Without it, Ctrl-C raises `KeyboardInterrupt` wherever the program happens to be
and SIGTERM ends the process at once; either way a run loses every result it had
not committed. Inside ``with stop_on_signals() as stop:`` the first signal only
sets ``stop.requested``: the run finishes the frame in hand, flushes its sinks and
commits. A second signal raises `KeyboardInterrupt` as usual, for a run stuck
waiting on a source; callers catch it and still commit what was processed.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by the first stop signal (or by `request`); read between frames."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str = "requested") -> None:
        self.signal_name = self.signal_name or reason
        self._event.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._event.wait(timeout_s)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGINT/SIGTERM set the yielded `StopRequest`; the old handlers come back
    on exit. Outside the main thread (where Python cannot take signals) it only
    yields a request nobody sets."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, _frame) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        log.warning("%s: finishing the frame in hand, then saving (again: now)", name)
        stop.request(name)

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
