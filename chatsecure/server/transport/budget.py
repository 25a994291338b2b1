"""The server-wide budget of bytes queued for clients: what bounds memory in total.

Each connection has its own bound (``max_queued_bytes``); without a total, many
connections that never read could each fill theirs. Connections charge what they queue
and are credited what leaves the process. Past the total, a connection holding more
than ``FAIR_SHARE`` is dropped as a slow consumer when it asks to queue more: readers
that keep up hold a few frames each and go on, however full the budget.
"""

from __future__ import annotations

import threading

# What any connection may hold however full the budget is: a login's pages, a burst.
FAIR_SHARE = 64 * 1024


class QueueBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def add(self, delta: int) -> None:
        """Charge (positive) or credit (negative) queued bytes. Any thread."""
        with self._lock:
            self._total += delta

    def admits(self, held: int, more: int) -> bool:
        """Whether a connection holding ``held`` bytes may queue ``more``.

        Read without the lock: a stale total moves the cut-off by a frame or two.
        """
        return held + more <= FAIR_SHARE or self._total + more <= self.limit
