"""Rate limits: token buckets (messages, room changes) and a windowed failure count for logins.

Both take the clock as an argument so tests can move time by hand.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable


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


class AccountBuckets:
    """A token bucket per account, made on first use; ``rate_and_burst()`` is read at each
    use, so a reload's new limits apply to buckets made before it."""

    def __init__(
        self, rate_and_burst: Callable[[], tuple[float, int]], clock: Callable[[], float]
    ) -> None:
        self._rate_and_burst = rate_and_burst
        self._clock = clock
        self._buckets: dict[int, TokenBucket] = {}

    def take(self, account_id: int) -> float:
        """Take a token of the account's: 0.0 if granted, else the seconds to wait."""
        rate, burst = self._rate_and_burst()
        now = self._clock()
        bucket = self._buckets.get(account_id)
        if bucket is None:
            bucket = self._buckets.setdefault(account_id, TokenBucket(rate, burst, now))
        bucket.rate, bucket.burst = rate, burst
        return bucket.take(now)


class Attempt:
    """One check (a login, a password change) charged to a key from before it starts."""

    __slots__ = ("alone", "entry", "key")

    def __init__(self, key: str, entry: _Entry, alone: bool) -> None:
        self.key = key
        self.entry = entry
        # Whether no other attempt on the key overlapped this one, so far.
        self.alone = alone


class _Entry:
    __slots__ = ("failures", "in_flight", "lock", "since")

    def __init__(self) -> None:
        self.since = 0.0  # when the window of the counted failures began
        self.failures = 0
        self.in_flight: list[Attempt] = []  # in the order they began
        self.lock = threading.Lock()  # see FailureCounter.exclusive


class FailureCounter:
    """Failures per key within a window, and the attempts on it still in flight.

    A key that reached ``limit`` failures is blocked until the window that started with
    its first failure ends. An attempt counts from ``begin``, before its check runs, so
    a burst of simultaneous attempts gets no more checks than the limit: each is judged
    as though every attempt that began before it and is still in flight will fail.

    Failures may also be kept elsewhere (an account's, in the database). Reading them
    and judging an attempt (``wait``) under ``exclusive``, and storing a failure and
    ending its attempt under it too, makes each failure count exactly once: stored, or
    in flight.

    Memory is bounded: past ``max_keys`` the longest-unused keys are dropped.
    ``limit`` and ``window`` may be changed between calls (a reload): each call reads them.
    """

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def begin(self, key: str) -> Attempt:
        """Start counting an attempt on ``key``; end it with ``end``, whatever happens."""
        with self._lock:
            entry = self._entries.pop(key, None) or _Entry()
            self._entries[key] = entry
            attempt = Attempt(key, entry, alone=not entry.in_flight)
            for other in entry.in_flight:
                other.alone = False
            entry.in_flight.append(attempt)
            self._trim()
            return attempt

    def exclusive(self, attempt: Attempt) -> threading.Lock:
        """A lock of the attempt's key, for reading or storing its failures elsewhere."""
        return attempt.entry.lock

    def wait(self, attempt: Attempt, now: float, earlier: int = 0, earlier_wait: int = 0) -> int:
        """Whole seconds until ``attempt`` may be checked; 0 if it may be now.

        ``earlier`` counts failures of the key kept elsewhere and ``earlier_wait`` is when
        their window ends.
        """
        with self._lock:
            entry = attempt.entry
            failures, remaining = 0, 0
            if entry.failures and now - entry.since < self.window:
                failures = entry.failures
                remaining = math.ceil(entry.since + self.window - now)
            ahead = entry.in_flight.index(attempt)
        counted = failures + earlier
        if counted >= self.limit:
            return max(1, remaining, earlier_wait)
        if counted + ahead >= self.limit:
            return 1  # the attempts ahead of it decide; they are checked within a second
        return 0

    def end(self, attempt: Attempt, now: float, *, failed: bool) -> None:
        """The attempt is over; count it if it ``failed``."""
        with self._lock:
            attempt.entry.in_flight.remove(attempt)
            entry = self._entries.get(attempt.key)
            if entry is None and failed:  # dropped from memory meanwhile
                entry = self._entries[attempt.key] = attempt.entry
                self._trim()
            if entry is None:
                return
            if failed:
                if not entry.failures or now - entry.since >= self.window:
                    entry.since, entry.failures = now, 0
                entry.failures += 1
            elif not entry.in_flight and (not entry.failures or now - entry.since >= self.window):
                del self._entries[attempt.key]

    def _trim(self) -> None:
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
