"""Retention: messages older than ``[history] retain_days`` are deleted, a little at a time.

Each housekeeping tick deletes at most ``BATCHES_PER_TICK`` batches of ``BATCH`` rows, each
its own short transaction, so the message writer never waits long behind a purge; a
purge that is not done goes on at the next tick, and a finished one looks again an hour on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chatsecure.server.core.live import LiveSettings
from chatsecure.storage.store import Store, now_ms

log = logging.getLogger(__name__)

BATCH = 1000
BATCHES_PER_TICK = 5
RECHECK_SECONDS = 3600.0
DAY_MS = 86_400_000


class Retention:
    def __init__(self, *, settings: LiveSettings, store: Store, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._store = store
        self._next = clock()

    def tick(self, now: float) -> int:
        """Delete some of what is past its time; returns how many messages went."""
        days = self._settings.now.history.retain_days
        if not days or now < self._next:
            return 0
        before_ms = now_ms() - days * DAY_MS
        deleted = 0
        for _ in range(BATCHES_PER_TICK):
            count = self._store.purge_messages(before_ms, batch=BATCH)
            deleted += count
            if count < BATCH:
                self._next = now + RECHECK_SECONDS
                break
        if deleted:
            log.info("deleted %d message(s) older than %d day(s)", deleted, days)
        return deleted
