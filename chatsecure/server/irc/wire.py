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
from chatsecure.server.link import Link, send_around
from chatsecure.storage.store import StoredMessage


class IrcAudience:
    __slots__ = ("_by_user", "_groups", "_places", "_sessions")

    def __init__(self, sessions: Sequence[IrcSession]) -> None:
        self._sessions = tuple(sessions)
        groups: dict[frozenset[str], list[IrcSession]] = {}
        for session in sessions:
            groups.setdefault(session.caps & ENCODING_CAPS, []).append(session)
        # Each member's link's send bound once: the loop runs per member per message.
        self._groups = tuple(
            (caps, tuple(s.link.send for s in members)) for caps, members in groups.items()
        )
        # Where each member's send is, so that leaving one out costs nothing per member.
        self._places: dict[Outbox, tuple[int, int]] = {
            session: (group, index)
            for group, members in enumerate(groups.values())
            for index, session in enumerate(members)
        }
        self._by_user: dict[str, list[IrcSession]] = {}
        for session in sessions:
            self._by_user.setdefault(session.session.user, []).append(session)

    def tell(self, notice: Notice, skip: Outbox | None = None) -> None:
        if isinstance(notice, StoredMessage):
            # Only one of the sender's sessions sent it; it heard its echo, or asked for none.
            left_out: list[Outbox] = [
                s for s in self._by_user.get(notice.sender, ()) if s.own_message_id == notice.id
            ]
            if skip is not None:
                left_out.append(skip)
            places = [self._places[s] for s in left_out if s in self._places]
            for group, (caps, sends) in enumerate(self._groups):
                gaps = sorted({index for g, index in places if g == group})
                send_around(sends, gaps, encode_all(message_lines(notice, caps)))
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
