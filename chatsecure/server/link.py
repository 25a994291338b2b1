"""The seam between the transport, which carries bytes, and a wire adapter, which means them.

The transport (sockets, TLS, threads) knows no wire format and no chat; a wire adapter
(JSON v1, IRC) knows no socket. For each accepted connection the transport hands the
adapter's ``Acceptor`` a ``Link`` and gets back a ``SessionPort`` to feed.

A broadcast queues the same bytes on many links, once per member per message, so a
link's ``carrier`` may queue them for all its links at once (``broadcast_to``): the
transport appends to each queue and wakes its writer once, where a ``send`` per link
would cost a Python call and a check of its own each.

One thread reads for many connections, so ``receive`` must never wait: a request that
may (bcrypt, the store) is handed to ``Link.aside``, which runs it on a thread of its
connection's own and reads nothing more from that client until it has run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

Event = TypeVar("Event")


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

    def aside(self, work: Callable[[], None]) -> None:
        """Run ``work`` off the reading thread, on one of this link's own, in order.

        Called from ``SessionPort.receive``, which then returns at once: ``work`` handles
        the rest of what was received, and ``receive`` is not called again until it has
        run. So one client's slow request holds up only that client.
        """

    @property
    def carrier(self) -> Carrier:
        """What queues a broadcast for this link together with the others it carries."""


# Queue the bytes on each link of a broadcast but those in the collection (few, or none).
Broadcast = Callable[[bytes, Collection[Link]], None]


class Carrier(Protocol):
    """Something that carries many links' bytes, and can queue one broadcast on them all."""

    def broadcaster(self, links: Sequence[Link]) -> Broadcast:
        """The ``Broadcast`` to ``links``, all of which this carries; built once per audience."""


class SessionPort(Protocol):
    """What the transport calls for one connection, never from two threads at once."""

    def receive(self, data: bytes) -> None:
        """Plaintext bytes from the peer, in order; from a thread that reads for many
        connections, so it hands anything that may wait to ``Link.aside``."""

    def connection_lost(self) -> None:
        """The connection is gone (EOF, error or closed by us). Idempotent."""

    @property
    def logged_in(self) -> bool:
        """Whether the client has logged in; it may change only within ``receive`` or
        the work it set aside.

        The listener gives connections that have not their own, smaller budget.
        """


class Acceptor(Protocol):
    """A wire format as a listener sees it: it opens a session for each new connection."""

    @property
    def slow_consumer_farewell(self) -> bytes:
        """What a client too slow to read gets in place of everything queued for it."""

    def open_session(self, link: Link, address: str) -> SessionPort:
        """A session for a new connection from ``address`` (an IP)."""


class _SeparateLinks:
    """The carrier of links that have only ``send`` (a wrapper, a test's link)."""

    def broadcaster(self, links: Sequence[Link]) -> Broadcast:
        return Fanout(links, [link.send for link in links])


SEPARATE_LINKS: Carrier = _SeparateLinks()


class Fanout:
    """A ``Broadcast`` through one queueing call per link (``queues[i]`` for ``links[i]``)."""

    __slots__ = ("_places", "_queues")

    def __init__(self, links: Sequence[Link], queues: Sequence[Callable[[bytes], None]]) -> None:
        self._queues = tuple(queues)
        self._places = {link: index for index, link in enumerate(links)}

    def __call__(self, data: bytes, left_out: Collection[Link]) -> None:
        places = self._places
        gaps = sorted({places[link] for link in left_out if link in places})
        send_around(self._queues, gaps, data)


def broadcast_to(links: Sequence[Link]) -> Broadcast:
    """One ``Broadcast`` to all of ``links``, through each one's carrier."""
    by_carrier: dict[Carrier, list[Link]] = {}
    for link in links:
        by_carrier.setdefault(link.carrier, []).append(link)
    parts = [carrier.broadcaster(members) for carrier, members in by_carrier.items()]
    if len(parts) == 1:
        return parts[0]

    def broadcast(data: bytes, left_out: Collection[Link]) -> None:
        for part in parts:
            part(data, left_out)

    return broadcast


def handle_received(
    events: Iterator[Event],
    quick: Callable[[Event], bool],
    handle: Callable[[Event], None],
    link: Link,
) -> None:
    """Handle ``events`` in order, as ``SessionPort.receive`` must: those that are
    ``quick`` (never wait) at once, and from the first that is not, every one on the
    link's own thread (``Link.aside``)."""
    for event in events:
        if not quick(event):
            link.aside(functools.partial(_handle_all, event, events, handle))
            return
        handle(event)


def _handle_all(first: Event, rest: Iterator[Event], handle: Callable[[Event], None]) -> None:
    handle(first)
    for event in rest:
        handle(event)


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
