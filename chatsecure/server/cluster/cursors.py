"""How far a node has delivered each conversation, and what single sessions already saw.

A conversation is a room (by name) or one account's direct messages (by account id):
all of an account's direct messages commit in id order (a batch locks both accounts), so
one cursor per account suffices. The node delivers only ids past the cursor, in order,
so a repeated hint or read changes nothing. A session that logged in or joined was sent
the history up to some id, maybe past the cursor; its *floor* keeps it from receiving
those messages again when the node delivers them to the others.

Used under the sequencer only, like everything that decides who receives what.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from chatsecure.server.core.session import Session

K = TypeVar("K")


class Cursors(Generic[K]):
    def __init__(self) -> None:
        self._at: dict[K, int] = {}
        self._floors: dict[K, dict[Session, int]] = {}

    def __contains__(self, key: K) -> bool:
        return key in self._at

    def start(self, key: K, delivered: int) -> None:
        """Follow ``key`` from ``delivered`` on, unless already followed."""
        self._at.setdefault(key, delivered)

    def showed(self, key: K, session: Session, newest: int) -> None:
        """``session`` was sent ``key``'s history up to ``newest``: skip it up to there."""
        if key in self._at and newest > self._at[key]:
            self._floors.setdefault(key, {})[session] = newest

    def drop(self, key: K) -> None:
        """No session here follows ``key`` any more."""
        self._at.pop(key, None)
        self._floors.pop(key, None)

    def forget(self, session: Session) -> None:
        for key in [k for k, floors in self._floors.items() if session in floors]:
            del self._floors[key][session]
            if not self._floors[key]:
                del self._floors[key]

    def snapshot(self) -> dict[K, int]:
        return dict(self._at)

    def behind(self, key: K, upto: int) -> bool:
        """Whether ``key`` is followed and has not been delivered up to ``upto``."""
        at = self._at.get(key)
        return at is not None and at < upto

    def advance(self, key: K, message_id: int) -> set[Session] | None:
        """Move past ``message_id``: None if it is not new here (do not deliver), else
        the sessions that already saw it (deliver to all but those)."""
        at = self._at.get(key)
        if at is None or message_id <= at:
            return None
        self._at[key] = message_id
        floors = self._floors.get(key)
        if not floors:
            return set()
        saw = {session for session, floor in floors.items() if floor >= message_id}
        for session in [s for s, floor in floors.items() if floor <= message_id]:
            del floors[session]
        if not floors:
            del self._floors[key]
        return saw
