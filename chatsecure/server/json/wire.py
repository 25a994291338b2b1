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
from chatsecure.server.link import Link


class JsonAudience:
    __slots__ = ("_sends", "_sessions")

    def __init__(self, sessions: Sequence[JsonSession]) -> None:
        self._sessions = tuple(sessions)
        # Bound once: the loop below runs once per member per message.
        self._sends = tuple(s.link.send for s in sessions)

    def tell(self, notice: Notice, skip: Outbox | None = None) -> None:
        data = encode(notice_frame(notice))
        if skip is None:
            for send in self._sends:
                send(data)
            return
        for session, send in zip(self._sessions, self._sends, strict=True):
            if session is not skip:
                send(data)


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
