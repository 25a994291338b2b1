"""JSON v1 as a wire format: it opens a session per connection and tells audiences.

A broadcast is encoded once and the same bytes queued for every member: the transport
never modifies what it is given, so one ``bytes`` object serves a thousand links.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from chatsecure.protocol import Bye, ByeReason, encode
from chatsecure.server.core.notices import Notice
from chatsecure.server.core.outbox import Outbox
from chatsecure.server.core.service import ChatService
from chatsecure.server.json.frames import notice_frame
from chatsecure.server.json.session import JsonSession
from chatsecure.server.link import Link, broadcast_to


class JsonAudience:
    __slots__ = ("_broadcast", "_links")

    def __init__(self, sessions: Sequence[JsonSession]) -> None:
        self._links: dict[Outbox, Link] = {s: s.link for s in sessions}
        self._broadcast = broadcast_to(list(self._links.values()))  # built once, used per message

    def tell(self, notice: Notice, skip: Outbox | None = None) -> None:
        left_out = [self._links[skip]] if skip is not None and skip in self._links else []
        self._broadcast(encode(notice_frame(notice)), left_out)


class JsonWire:
    """The ``Acceptor`` a listener hands JSON v1 connections to, and their ``Wire``."""

    slow_consumer_farewell = encode(Bye(reason=ByeReason.SLOW_CONSUMER))

    def __init__(self, service: ChatService) -> None:
        self._service = service

    def open_session(self, link: Link, address: str) -> JsonSession:
        return JsonSession(self._service, self, link, address)

    def audience(self, outboxes: Sequence[Outbox]) -> JsonAudience:
        # The hub groups outboxes by wire, so all of these are this wire's sessions.
        return JsonAudience(cast(Sequence[JsonSession], outboxes))
