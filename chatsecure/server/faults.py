"""Requests the server could not complete: logged with a traceback, but not without end.

A request that makes a handler raise is a bug or a storage fault; its traceback is what
an operator needs, so the first few each minute are logged whole. Past that, a client
that found a way to make requests fail could fill the disk with the same traceback, so
the rest are only counted, and the count is logged once the minute is over. One budget
for the whole server, shared by every wire adapter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

TRACEBACKS_PER_WINDOW = 5
WINDOW_SECONDS = 60.0


class FaultLog:
    def __init__(
        self,
        per_window: int = TRACEBACKS_PER_WINDOW,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_window = per_window
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = -window
        self._logged = 0
        self._suppressed = 0

    def request_failed(self, what: str, user: str) -> None:
        """Log the exception being handled: whole while the window's budget lasts."""
        now = self._clock()
        with self._lock:
            suppressed = 0
            if now - self._window_start >= self._window:
                suppressed, self._suppressed = self._suppressed, 0
                self._window_start, self._logged = now, 0
            whole = self._logged < self._per_window
            if whole:
                self._logged += 1
            else:
                self._suppressed += 1
        if suppressed:
            log.error("%d more requests failed (tracebacks not logged)", suppressed)
        if whole:
            log.exception("%s from %s failed", what, user)


request_failures = FaultLog()  # the server's one budget
