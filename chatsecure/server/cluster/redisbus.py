"""The Redis bus: pub/sub on one channel, for message rates LISTEN/NOTIFY would feel.

Redis pub/sub keeps nothing: a node that is disconnected misses what was published, and
the hub's catch-up covers that. The subscriber thread reconnects (and says so) when
Redis restarts; a publish that fails is logged and dropped, and so are those of the next
second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from threading import Event

import redis

from chatsecure.server.cluster.bus import Listener, ListeningThread

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how soon the bus thread notices a stop
SOCKET_TIMEOUT = 2.0
# After a failed publish, later ones are dropped for this long: the hub's thread must not
# wait on an unreachable Redis for every round, and its catch-up covers what is dropped.
PUBLISH_PAUSE = 1.0


class RedisBus:
    def __init__(self, url: str, channel: str, node: str) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            client_name=f"chatsecure-bus-{node}",
        )
        self._channel = channel
        self._paused_until = 0.0
        self._thread = ListeningThread("Redis", self._listen, (redis.RedisError,))

    def start(self, listener: Listener) -> None:
        self._thread.start(listener)

    def publish(self, payload: str) -> None:
        if time.monotonic() < self._paused_until:
            return
        try:
            self._client.publish(self._channel, payload)
        except redis.RedisError as exc:
            self._paused_until = time.monotonic() + PUBLISH_PAUSE
            log.warning("could not publish on the Redis bus: %s", exc.__class__.__name__)

    def stop(self) -> None:
        self._thread.stop()
        self._client.close()

    def _listen(
        self, heard: Callable[[str], None], connected: Callable[[], None], stopping: Event
    ) -> None:
        # Untyped in older redis releases, typed in newer ones (8.2 here): ignore either way.
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]
        try:
            pubsub.subscribe(self._channel)
            connected()
            while not stopping.is_set():
                message = pubsub.get_message(timeout=POLL_SECONDS)
                if message is not None and message["type"] == "message":
                    heard(message["data"].decode("utf-8", "replace"))
        finally:
            pubsub.close()
