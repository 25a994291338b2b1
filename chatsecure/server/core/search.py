"""Search: the newest messages matching some words, in what the account may read.

The store's full-text index does the matching; here are the access rules (a room only
while a member, and a private room a non-member cannot tell from a missing one) and
the pace: a search reads an index, so an account gets a few a second.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from chatsecure.server.core.accounts import named
from chatsecure.server.core.limits import AccountBuckets
from chatsecure.server.core.results import Conversation, Found, InRoom, Label, Refusal, Why
from chatsecure.server.core.rooms import Rooms
from chatsecure.server.core.session import Session
from chatsecure.storage.store import Store

# A person types a search and reads the results: a burst while paging, then a pause.
SEARCHES_PER_SECOND = 2.0
SEARCH_BURST = 10


class Search:
    def __init__(self, *, store: Store, rooms: Rooms, clock: Callable[[], float]) -> None:
        self._store = store
        self._rooms = rooms
        self._buckets = AccountBuckets(lambda: (SEARCHES_PER_SECOND, SEARCH_BURST), clock)

    def search(
        self,
        session: Session,
        label: Label,
        words: str,
        within: Conversation | None,
        *,
        before: int | None,
        limit: int,
    ) -> None:
        """Matches of ``words`` in ``within`` (every conversation the account may read
        when None), newest first, below the id ``before`` when given."""
        wait = self._buckets.take(session.account_id)
        if wait:
            raise Refusal(Why.RATE_LIMITED, "searching too fast", retry_after=math.ceil(wait))
        room_id = peer_id = None
        if isinstance(within, InRoom):
            room_id = self._rooms.member_room_id(session, within.room)
        elif within is not None:
            peer_id = named(self._store, within.user).id
        found, more = self._store.search(
            session.account_id, words, room_id=room_id, peer_id=peer_id, before=before, limit=limit
        )
        session.outbox.reply(label, Found(found, more))
