"""The node's pulse: write its heartbeat, look at who else is alive, wake the hub.

A thread of its own, so a hub busy delivering never looks dead to the other nodes. Each
beat asks the hub to catch up from the database (what a lost hint left undelivered), and
to read everyone's presence again when the set of live nodes changed (a node started,
stopped or died) or every ``RECONCILE_EVERY`` beats (what lost presence news left wrong).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from chatsecure.config import ClusterSettings
from chatsecure.server.core.ticker import Ticker
from chatsecure.storage.cluster import ClusterStore

log = logging.getLogger(__name__)

RECONCILE_EVERY = 5


class Heartbeat:
    def __init__(
        self,
        settings: ClusterSettings,
        db: ClusterStore,
        catch_up: Callable[[], None],
        reconcile: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._db = db
        self._catch_up = catch_up
        self._reconcile = reconcile
        self._live: set[str] | None = None  # the live nodes at the last beat
        self._beats = 0
        self._failing = False
        self._ticker = Ticker("cluster-heartbeat", settings.heartbeat_interval, self._beat)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def _beat(self) -> None:
        try:
            self._db.beat(self._settings.node)
            live = self._db.live_nodes(self._settings.node_timeout)
        except SQLAlchemyError as exc:
            if not self._failing:
                log.warning("cluster heartbeat failed (%s); retrying", exc.__class__.__name__)
            self._failing = True
            self._live = None  # read presence again once the database answers
            return
        if self._failing:
            log.info("cluster heartbeat is back")
        self._failing = False
        self._beats += 1
        if live != self._live or self._beats % RECONCILE_EVERY == 0:
            if live != self._live:
                log.info("live nodes: %s", ", ".join(sorted(live)))
            self._reconcile()
        else:
            self._catch_up()
        self._live = live
