"""IRC as a wire format: it opens a session per connection and tells audiences.

A broadcast is encoded once per group of members that asked for the same message tags
(server-time, message-tags, account-tag), and the same bytes are queued for each of
them. A member's own message is skipped: it heard its echo, or asked for none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from chatsecure.server.core.notices import MemberChange, Notice
from chatsecure.server.core.outbox import Outbox
from chatsecure.server.core.service import ChatService
from chatsecure.server.irc.codec import encode_all
from chatsecure.server.irc.replies import ENCODING_CAPS, member_line, message_lines
from chatsecure.server.irc.session import SLOW_CONSUMER_FAREWELL, IrcSession
from chatsecure.server.link import Link, broadcast_to
from chatsecure.storage.store import StoredMessage


class IrcAudience:
    __slots__ = ("_by_user", "_groups", "_links", "_sessions")

    def __init__(self, sessions: Sequence[IrcSession]) -> None:
        self._sessions = tuple(sessions)
        groups: dict[frozenset[str], list[IrcSession]] = {}
        for session in sessions:
            groups.setdefault(session.caps & ENCODING_CAPS, []).append(session)
        # Built once, used per message.
        self._groups = tuple(
            (caps, broadcast_to([s.link for s in members])) for caps, members in groups.items()
        )
        self._links: dict[Outbox, Link] = {s: s.link for s in sessions}
        self._by_user: dict[str, list[IrcSession]] = {}
        for session in sessions:
            self._by_user.setdefault(session.session.user, []).append(session)

    def tell(self, notice: Notice, skip: Outbox | None = None) -> None:
        if isinstance(notice, StoredMessage):
            # Only one of the sender's sessions sent it; it heard its echo, or asked for none.
            left_out = [
                self._links[s]
                for s in self._by_user.get(notice.sender, ())
                if s.own_message_id == notice.id
            ]
            if skip is not None and skip in self._links:
                left_out.append(self._links[skip])
            for caps, broadcast in self._groups:
                broadcast(encode_all(message_lines(notice, caps)), left_out)
            return
        if isinstance(notice, MemberChange):
            data = encode_all([member_line(notice)])
            for session in self._sessions:
                if session is not skip:
                    session.note_member(notice)
                    session.link.send(data)
            return
        for session in self._sessions:  # presence: each is told of the rooms it shares
            if session is not skip:
                session.notify(notice)


class IrcWire:
    """The ``Acceptor`` a listener hands IRC connections to, and their ``Wire``."""

    slow_consumer_farewell = SLOW_CONSUMER_FAREWELL

    def __init__(self, service: ChatService) -> None:
        self._service = service

    def open_session(self, link: Link, address: str) -> IrcSession:
        return IrcSession(self._service, self, link, address)

    def audience(self, outboxes: Sequence[Outbox]) -> IrcAudience:
        # The hub groups outboxes by wire, so all of these are this wire's sessions.
        return IrcAudience(cast(Sequence[IrcSession], outboxes))
