"""The seam between the chat core and the transport that carries its bytes.

The core never sees a socket. For each connection the transport hands the core an
``Outbox``; the core answers with a ``Session`` whose methods the transport calls from
that connection's reader thread.
"""

from __future__ import annotations

from typing import Protocol


class Outbox(Protocol):
    """Where the core puts bytes for one peer."""

    def send(self, data: bytes) -> None:
        """Queue encoded frames for the peer. Never blocks; safe from any thread.

        ``data`` may be shared by many outboxes (a broadcast is encoded once), so the
        transport must not modify it. After ``close`` further data is dropped.
        """

    def close(self) -> None:
        """Deliver what is queued (within a bound of time), then close. Idempotent."""


class SessionPort(Protocol):
    """What the transport calls on the core for one connection."""

    def receive(self, data: bytes) -> None:
        """Plaintext bytes from the peer, in order, from the connection's reader thread."""

    def connection_lost(self) -> None:
        """The connection is gone (EOF, error or closed by us). Idempotent."""
