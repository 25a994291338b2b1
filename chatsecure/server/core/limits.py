"""Rate limits: a token bucket for messages and a sliding failure count for logins.

Both take the clock as an argument so tests can move time by hand.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; each message takes one."""

    __slots__ = ("_level", "_lock", "_stamp", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._level = float(burst)
        self._stamp = now
        self._lock = threading.Lock()

    def take(self, now: float) -> float:
        """Take a token: 0.0 if granted, else the seconds until one is available."""
        with self._lock:
            self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._level >= 1.0:
                self._level -= 1.0
                return 0.0
            return (1.0 - self._level) / self.rate


class FailureCounter:
    """Failures per key within a window, bounded in memory (oldest keys are dropped).

    A key that reached ``limit`` failures is blocked until the window that started
    with its first failure ends.
    """

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._entries: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str, now: float) -> int:
        """Whole seconds until ``key`` may try again; 0 if it may now."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return 0
            since, count = entry
            if now - since >= self.window:
                del self._entries[key]
                return 0
            if count < self.limit:
                return 0
            return max(1, math.ceil(since + self.window - now))

    def fail(self, key: str, now: float) -> int:
        """Count a failure; returns the failures in the current window."""
        with self._lock:
            since, count = self._entries.pop(key, (now, 0))
            if now - since >= self.window:
                since, count = now, 0
            self._entries[key] = (since, count + 1)
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)
            return count + 1
