"""Read markers: how far an account has read each conversation, the same on every device.

A marker only moves forward, and never past the conversation's newest message, so the
writes one account can cause are bounded by the messages there are; requests are paced
besides, since even a marker that does not move costs a transaction.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from chatsecure.server.core.accounts import named
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.limits import AccountBuckets
from chatsecure.server.core.notices import ReadMoved
from chatsecure.server.core.results import Conversation, Done, InRoom, Label, Refusal, Why
from chatsecure.server.core.rooms import Rooms
from chatsecure.server.core.session import Session
from chatsecure.storage.store import Store

# A client marks a conversation read as its user looks at it: a few a second at most.
READS_PER_SECOND = 5.0
READ_BURST = 20


class ReadMarkers:
    def __init__(self, *, store: Store, hub: Hub, rooms: Rooms, clock: Callable[[], float]) -> None:
        self._store = store
        self._hub = hub
        self._rooms = rooms
        self._buckets = AccountBuckets(lambda: (READS_PER_SECOND, READ_BURST), clock)

    def mark(self, session: Session, label: Label, of: Conversation, up_to: int) -> None:
        wait = self._buckets.take(session.account_id)
        if wait:
            raise Refusal(Why.RATE_LIMITED, "marking read too fast", retry_after=math.ceil(wait))
        origin = self._rooms.origin
        if isinstance(of, InRoom):
            room_id = self._rooms.member_room_id(session, of.room)
            moved = self._store.mark_read(session.account_id, up_to, room_id=room_id, origin=origin)
            room, with_ = of.room, None
        else:
            peer = named(self._store, of.user)
            moved = self._store.mark_read(session.account_id, up_to, peer_id=peer.id, origin=origin)
            room, with_ = None, peer.name
        session.outbox.reply(label, Done())
        if moved is not None:
            self.tell(session.account_id, ReadMoved(moved, room, with_), skip=session)

    def tell(self, account_id: int, news: ReadMoved, *, skip: Session | None = None) -> None:
        """Every other session of the account (also for a marker moved elsewhere)."""
        for other in self._hub.sessions_of(account_id):
            if other is not skip:
                other.outbox.notify(news)
