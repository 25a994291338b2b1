"""The seam between the transport, which carries bytes, and a wire adapter, which means them.

The transport (sockets, TLS, threads) knows no wire format and no chat; a wire adapter
(JSON v1, IRC) knows no socket. For each accepted connection the transport hands the
adapter's ``Acceptor`` a ``Link`` and gets back a ``SessionPort`` to feed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol


class Link(Protocol):
    """One client's byte stream, as a wire adapter writes to it."""

    def send(self, data: bytes) -> None:
        """Queue encoded bytes for the peer. Never blocks; safe from any thread.

        ``data`` may be shared by many links (a broadcast is encoded once), so the
        transport must not modify it. After ``close`` further data is dropped.
        """

    def close(self) -> None:
        """Deliver what is queued (within a bound of time), then close. Idempotent."""

    def unsent_bytes(self) -> int:
        """Bytes queued and not yet sent: how a bulk sender keeps pace with its reader."""


class SessionPort(Protocol):
    """What the transport calls for one connection, from that connection's reader thread."""

    def receive(self, data: bytes) -> None:
        """Plaintext bytes from the peer, in order."""

    def connection_lost(self) -> None:
        """The connection is gone (EOF, error or closed by us). Idempotent."""

    @property
    def logged_in(self) -> bool:
        """Whether the client has logged in; it may change only within ``receive``.

        The listener gives connections that have not their own, smaller budget.
        """


class Acceptor(Protocol):
    """A wire format as a listener sees it: it opens a session for each new connection."""

    @property
    def slow_consumer_farewell(self) -> bytes:
        """What a client too slow to read gets in place of everything queued for it."""

    def open_session(self, link: Link, address: str) -> SessionPort:
        """A session for a new connection from ``address`` (an IP)."""


def send_around(sends: Sequence[Callable[[bytes], None]], gaps: Iterable[int], data: bytes) -> None:
    """Queue ``data`` on each of ``sends`` but those at ``gaps`` (ascending positions).

    A broadcast leaves out a member or two (the sender); testing every member for it
    would cost more than the rest of the loop.
    """
    start = 0
    for gap in gaps:
        for send in sends[start:gap]:
            send(data)
        start = gap + 1
    for send in sends[start:]:
        send(data)
