"""The seam between the cluster hub and a message bus: publish payloads, hear them.

A bus is lossy by contract: a payload may be lost while a node or the bus restarts, and
the hub does not care, because it catches up from the database on its heartbeat. A bus
reports a (re)connection, so the hub can catch up at once instead of on the next beat.
"""

from __future__ import annotations

from typing import Protocol

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
