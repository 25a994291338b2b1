"""The Redis bus: pub/sub on one channel, for message rates LISTEN/NOTIFY would feel.

Redis pub/sub keeps nothing: a node that is disconnected misses what was published, and
the hub's catch-up covers that. The subscriber thread reconnects (and says so) when
Redis restarts; a publish that fails is logged and dropped, and so are those of the next
second.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from chatsecure.server.cluster.bus import RECONNECT_DELAYS, Listener

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
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, listener: Listener) -> None:
        self._thread = threading.Thread(
            target=self._listen, args=(listener,), name="cluster-bus", daemon=True
        )
        self._thread.start()

    def publish(self, payload: str) -> None:
        if time.monotonic() < self._paused_until:
            return
        try:
            self._client.publish(self._channel, payload)
        except redis.RedisError as exc:
            self._paused_until = time.monotonic() + PUBLISH_PAUSE
            log.warning("could not publish on the Redis bus: %s", exc.__class__.__name__)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.close()

    def _listen(self, listener: Listener) -> None:
        failures = 0
        while not self._stopping.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self._channel)
                if failures:
                    log.info("the Redis bus is back")
                failures = 0
                listener.connected()
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=POLL_SECONDS)
                    if message is not None and message["type"] == "message":
                        listener.heard(message["data"].decode("utf-8", "replace"))
            except redis.RedisError as exc:
                if not failures:
                    log.warning("lost the Redis bus (%s); reconnecting", exc)
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                self._stopping.wait(delay)
            finally:
                pubsub.close()
