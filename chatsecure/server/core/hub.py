"""Who is online, in which rooms, and how to reach them: the one seam for fan-out.

Every frame meant for more than the requesting connection goes out through a ``Hub``.
Today it delivers to this process's sessions; with several server nodes it is the
place that also publishes to, and receives from, the message bus.

Frames arrive already encoded, so a broadcast is encoded once and its bytes shared.
The recipients of each room are cached as a tuple of outboxes, rebuilt only when
someone in the room comes, goes, joins or leaves, so a delivery to a thousand members
is a loop of a thousand ``send`` calls and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol

from chatsecure.server.core.outbox import Outbox


class Member(Protocol):
    """A logged-in session as the hub sees it."""

    @property
    def account_id(self) -> int: ...

    @property
    def outbox(self) -> Outbox: ...


class Hub:
    """Thread-safe registry of online sessions and the rooms their accounts are in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[int, list[Member]] = {}
        self._rooms_of: dict[int, set[str]] = {}
        self._online_in: dict[str, set[int]] = {}
        self._recipients: dict[str, tuple[Outbox, ...]] = {}

    # -- membership -------------------------------------------------------------------

    def add(self, session: Member, rooms: Iterable[str]) -> bool:
        """Register a logged-in session; True if it is its account's first."""
        account = session.account_id
        with self._lock:
            sessions = self._sessions.setdefault(account, [])
            sessions.append(session)
            first = len(sessions) == 1
            if first:
                self._rooms_of[account] = set(rooms)
                for room in self._rooms_of[account]:
                    self._online_in.setdefault(room, set()).add(account)
            self._invalidate(self._rooms_of[account])
            return first

    def remove(self, session: Member) -> bool:
        """Forget a session; True if it was its account's last (the account went offline)."""
        account = session.account_id
        with self._lock:
            sessions = self._sessions.get(account)
            if not sessions or session not in sessions:
                return False
            sessions.remove(session)
            rooms = self._rooms_of.get(account, set())
            self._invalidate(rooms)
            if sessions:
                return False
            del self._sessions[account]
            for room in self._rooms_of.pop(account, set()):
                self._drop(room, account)
            return True

    def join(self, account: int, room: str) -> None:
        with self._lock:
            if account in self._sessions:
                self._rooms_of[account].add(room)
                self._online_in.setdefault(room, set()).add(account)
                self._invalidate((room,))

    def leave(self, account: int, room: str) -> None:
        with self._lock:
            rooms = self._rooms_of.get(account)
            if rooms is not None and room in rooms:
                rooms.discard(room)
                self._drop(room, account)

    def _drop(self, room: str, account: int) -> None:
        members = self._online_in.get(room)
        if members is not None:
            members.discard(account)
            if not members:
                del self._online_in[room]
        self._invalidate((room,))

    def _invalidate(self, rooms: Iterable[str]) -> None:
        for room in rooms:
            self._recipients.pop(room, None)

    # -- questions --------------------------------------------------------------------

    def is_online(self, account: int) -> bool:
        with self._lock:
            return account in self._sessions

    def in_room(self, account: int, room: str) -> bool:
        with self._lock:
            return room in self._rooms_of.get(account, ())

    def online_accounts(self) -> list[int]:
        with self._lock:
            return list(self._sessions)

    def sessions_of(self, account: int) -> list[Member]:
        with self._lock:
            return list(self._sessions.get(account, ()))

    def all_sessions(self) -> list[Member]:
        with self._lock:
            return [s for sessions in self._sessions.values() for s in sessions]

    def room_mates(self, account: int) -> set[int]:
        """Online accounts that share at least one room with ``account`` (itself excluded)."""
        with self._lock:
            mates: set[int] = set()
            for room in self._rooms_of.get(account, ()):
                mates |= self._online_in.get(room, set())
            mates.discard(account)
            return mates

    # -- delivery ---------------------------------------------------------------------

    def to_room(self, room: str, data: bytes, *, skip: Outbox | None = None) -> None:
        """Every session of every online member of ``room``."""
        with self._lock:
            recipients = self._recipients.get(room)
            if recipients is None:
                recipients = tuple(
                    s.outbox
                    for account in self._online_in.get(room, ())
                    for s in self._sessions[account]
                )
                self._recipients[room] = recipients
        for outbox in recipients:
            if outbox is not skip:
                outbox.send(data)

    def to_accounts(
        self, accounts: Iterable[int], data: bytes, *, skip: Outbox | None = None
    ) -> None:
        """Every session of each of ``accounts`` (each account once)."""
        with self._lock:
            recipients = [s.outbox for a in set(accounts) for s in self._sessions.get(a, ())]
        for outbox in recipients:
            if outbox is not skip:
                outbox.send(data)
