"""Housekeeping: one thread for login and idle timeouts, pings, disabled accounts, stored
login failures whose window has ended, changes made elsewhere (the journal), retention,
uploads past their time, files no message refers to, and compacting the search index
after deletions."""

from __future__ import annotations

import logging
from collections.abc import Callable

from chatsecure.server.core import events
from chatsecure.server.core.auth import Authenticator
from chatsecure.server.core.files import Files
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.journal import Journal
from chatsecure.server.core.live import LiveSettings
from chatsecure.server.core.notices import EndReason, StillThere
from chatsecure.server.core.retention import Retention
from chatsecure.server.core.sessions import Sessions
from chatsecure.server.core.ticker import Ticker
from chatsecure.storage.store import Store, now_ms

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 1.0
# Disabled accounts are kicked, and changes made elsewhere told, within this (plus a tick).
BLOCKED_POLL_INTERVAL = 2.0
# A batch of ended address failures is deleted this often: more than a node's bcrypt
# pool can fail in the time, so the table stays as small as the open windows.
PRUNE_INTERVAL = 10.0
# Files no message refers to (after deletions elsewhere, or a crash) are looked for this
# often, a deletion here or by retention collecting at once.
UPKEEP_INTERVAL = 3600.0


class Housekeeper:
    def __init__(
        self,
        *,
        settings: LiveSettings,
        store: Store,
        hub: Hub,
        sessions: Sessions,
        auth: Authenticator,
        journal: Journal,
        retention: Retention,
        files: Files,
        observers: events.Observers,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._store = store
        self._hub = hub
        self._sessions = sessions
        self._auth = auth
        self._journal = journal
        self._retention = retention
        self._files = files
        self._observers = observers
        self._clock = clock
        self._next_poll = self._next_prune = self._next_sweep = clock()
        self._compact_at: float | None = None  # when the search index is due a compaction
        self._ticker = Ticker("housekeeping", HOUSEKEEPING_INTERVAL, self._tick)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def _tick(self) -> None:
        try:
            now = self._clock()
            self._check_timeouts(now)
            if now >= self._next_poll:
                self._next_poll = now + BLOCKED_POLL_INTERVAL
                self._sessions.kick_blocked()
                self._journal.poll()
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_INTERVAL
                self._auth.prune_failures()
                self._journal.prune(now_ms())
            self._files.expire(now)
            if self._retention.tick(now):
                self._files.collect()
            if now >= self._next_sweep:
                self._next_sweep = now + UPKEEP_INTERVAL
                self._files.collect()
                self._files.remove_orphans()
            self._compact_search_index(now)
        except Exception:
            log.exception("housekeeping failed; will retry")
            self._observers.emit(events.Fault("housekeeping failed; see the log"))

    def _compact_search_index(self, now: float) -> None:
        """Compact the search index ``[history] search_compact_delay`` after the first
        deletion since it last was, so a deleted message's words leave the SQLite file
        by then; deletions that come close together cost one rewrite of the index
        (docs/performance.md has its time). Here, off the chat path: sends wait for the
        database meanwhile, but no thread of chat does the work."""
        if self._compact_at is None:
            if self._store.search_index_stale:
                self._compact_at = now + self._settings.now.history.search_compact_delay
        elif now >= self._compact_at:
            self._compact_at = None
            self._store.compact_search_index()

    def _check_timeouts(self, now: float) -> None:
        limits = self._settings.now.limits
        for session in self._hub.sessions():
            if session.account is None:
                if now - session.opened_at > limits.login_timeout:
                    self._sessions.end(session, EndReason.LOGIN_TIMEOUT)
                continue
            quiet = now - session.last_heard
            if quiet > limits.idle_timeout:
                self._sessions.end(session, EndReason.IDLE_TIMEOUT)
            elif quiet > limits.idle_timeout / 2 and not session.pinged:
                session.pinged = True
                session.outbox.notify(StillThere())
