"""The node's pulse: write its heartbeat, look at who else is alive, wake the hub.

A thread of its own, so a hub busy delivering never looks dead to the other nodes. Each
beat asks the hub to catch up from the database (what a lost hint left undelivered), and
to read everyone's presence again when the set of live nodes changed (a node started,
stopped or died) or every ``RECONCILE_EVERY`` beats (what lost presence news left wrong).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from chatsecure.config import ClusterSettings
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
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cluster-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        node, interval = self._settings.node, self._settings.heartbeat_interval
        live: set[str] | None = None
        beats = 0
        failing = False
        while not self._stopping.wait(interval):
            try:
                self._db.beat(node)
                now_live = self._db.live_nodes(self._settings.node_timeout)
            except SQLAlchemyError as exc:
                if not failing:
                    log.warning("cluster heartbeat failed (%s); retrying", exc.__class__.__name__)
                failing = True
                live = None  # read presence again once the database answers
                continue
            if failing:
                log.info("cluster heartbeat is back")
            failing = False
            beats += 1
            if now_live != live or beats % RECONCILE_EVERY == 0:
                if now_live != live:
                    log.info("live nodes: %s", ", ".join(sorted(now_live)))
                self._reconcile()
            else:
                self._catch_up()
            live = now_live
