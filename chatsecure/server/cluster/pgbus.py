"""The PostgreSQL bus: LISTEN on a connection of its own, NOTIFY through the store's pool.

Nothing to run beside the database. A NOTIFY is sent at commit and reaches every session
listening on the channel, in commit order. The listening connection is not pooled: it
belongs to the bus thread, which reconnects (and says so) when PostgreSQL restarts or
someone ends the connection; what was published meanwhile is lost, which the hub's
catch-up covers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from threading import Event

import psycopg
from psycopg import sql
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from chatsecure.server.cluster.bus import Listener, ListeningThread

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how soon the bus thread notices a stop


def application_name(node: str) -> str:
    """How the listening connection shows in ``pg_stat_activity``."""
    return f"chatsecure-bus {node}"[:63]


class PostgresBus:
    def __init__(self, engine: Engine, channel: str, node: str) -> None:
        self._engine = engine
        self._channel = channel
        self._node = node
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._thread = ListeningThread("PostgreSQL", self._listen, (psycopg.Error,))

    def start(self, listener: Listener) -> None:
        self._thread.start(listener)

    def publish(self, payload: str) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(select(func.pg_notify(self._channel, payload)))
        except SQLAlchemyError as exc:
            log.warning("could not publish on the PostgreSQL bus: %s", exc.__class__.__name__)

    def stop(self) -> None:
        self._thread.stop()

    def _listen(
        self, heard: Callable[[str], None], connected: Callable[[], None], stopping: Event
    ) -> None:
        with psycopg.connect(
            self._dsn,
            autocommit=True,
            application_name=application_name(self._node),
            connect_timeout=5,
        ) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            connected()
            while not stopping.is_set():
                for notice in conn.notifies(timeout=POLL_SECONDS):
                    heard(notice.payload)
