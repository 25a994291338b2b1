"""The seam between the cluster hub and a message bus: publish payloads, hear them.

A bus is lossy by contract: a payload may be lost while a node or the bus restarts, and
the hub does not care, because it catches up from the database on its heartbeat. A bus
reports a (re)connection, so the hub can catch up at once instead of on the next beat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0)  # then 2 s between tries


class Listener(Protocol):
    def heard(self, payload: str) -> None:
        """A payload some node (maybe this one) published."""

    def connected(self) -> None:
        """The bus (re)connected: payloads may have been missed since the last one."""


class Bus(Protocol):
    def start(self, listener: Listener) -> None:
        """Connect and deliver payloads to ``listener`` from a thread of the bus's own."""

    def publish(self, payload: str) -> None:
        """Send to every node; never raises (a lost payload is caught up on later)."""

    def stop(self) -> None: ...


# ``listen(heard, connected, stopping)``: connect, call ``connected()``, hand each payload
# to ``heard`` until ``stopping`` is set; raise when the connection is lost.
Listen = Callable[[Callable[[str], None], Callable[[], None], threading.Event], None]


class ListeningThread:
    """A bus's listening thread: ``listen`` again after each loss, with backoff, until stopped.

    One loss is logged until the bus is back; ``lost`` are the errors a lost connection
    raises, anything else is logged with its traceback and retried after the longest delay.
    """

    def __init__(self, bus: str, listen: Listen, lost: tuple[type[Exception], ...]) -> None:
        self._bus = bus
        self._listen = listen
        self._lost = lost
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, listener: Listener) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(listener,), name="cluster-bus", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, listener: Listener) -> None:
        failures = 0

        def connected() -> None:
            nonlocal failures
            if failures:
                log.info("the %s bus is back", self._bus)
            failures = 0
            listener.connected()

        while not self._stopping.is_set():
            try:
                self._listen(listener.heard, connected, self._stopping)
            except self._lost as exc:
                if not failures:
                    log.warning("lost the %s bus (%s); reconnecting", self._bus, exc)
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                self._stopping.wait(delay)
            except Exception:
                log.exception("the %s bus failed; reconnecting", self._bus)
                self._stopping.wait(RECONNECT_DELAYS[-1])
