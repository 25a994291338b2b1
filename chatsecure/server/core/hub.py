"""Who is connected, who is online in which room, and how to reach them: the fan-out seam.

Every notice meant for more than the requesting session goes out through the ``Hub``.
This one delivers to this process's sessions; the cluster hub (``server/cluster``) also
publishes to, and receives from, a message bus. The service is handed its hub, so one can
replace the other. The hub owns the ``sequencer`` lock the service orders deliveries by,
because a cluster hub delivers from a thread of its own and must take it too.

A room's recipients are cached as audiences, one per wire format, rebuilt only when
someone in the room comes, goes, joins or leaves: a notice to a thousand members is
encoded once per format, then a loop of queue appends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from chatsecure.server.core.notices import Notice
from chatsecure.server.core.outbox import Audience, Outbox, Wire
from chatsecure.server.core.session import Session
from chatsecure.storage.store import LoginSnapshot, Page


def audiences_of(outboxes: Iterable[Outbox]) -> tuple[Audience, ...]:
    """``outboxes`` as one audience per wire format."""
    by_wire: dict[Wire, list[Outbox]] = {}
    for outbox in outboxes:
        by_wire.setdefault(outbox.wire, []).append(outbox)
    return tuple(wire.audience(group) for wire, group in by_wire.items())


class Room:
    """A room with someone online in it: those accounts, and their sessions' audiences."""

    __slots__ = ("audiences", "name", "online")

    def __init__(self, name: str) -> None:
        self.name = name
        self.online: set[int] = set()
        self.audiences: tuple[Audience, ...] | None = None  # None: to be rebuilt


class Hub:
    """Thread-safe registry of open sessions, online accounts and the rooms they are in."""

    def __init__(self) -> None:
        self.sequencer = threading.Lock()  # see ChatService
        self._lock = threading.Lock()
        self._sessions: dict[int, Session] = {}  # every open session, logged in or not
        self._by_account: dict[int, list[Session]] = {}  # logged-in sessions
        self._rooms_of: dict[int, set[str]] = {}  # online account -> its rooms
        self._rooms: dict[str, Room] = {}

    # -- sessions ---------------------------------------------------------------------

    def open(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.id] = session

    def log_in(
        self, session: Session, rooms: Iterable[str], seen: LoginSnapshot | None = None
    ) -> bool:
        """The session's account is set: route to it. True if it is the account's first.

        ``seen`` is the history the login sends; this hub needs none of it (see ``showed``).
        """
        account = session.account_id
        with self._lock:
            sessions = self._by_account.setdefault(account, [])
            sessions.append(session)
            first = len(sessions) == 1
            if first:
                self._rooms_of[account] = set(rooms)
                for room in self._rooms_of[account]:
                    self._room(room).online.add(account)
            self._invalidate(self._rooms_of[account])
            return first

    def close(self, session: Session) -> bool:
        """Forget a session; True if it was its account's last (the account went offline)."""
        with self._lock:
            self._sessions.pop(session.id, None)
            if session.account is None:
                return False
            account = session.account.id
            sessions = self._by_account.get(account)
            if not sessions or session not in sessions:
                return False
            sessions.remove(session)
            self._invalidate(self._rooms_of[account])
            if sessions:
                return False
            del self._by_account[account]
            for room in self._rooms_of.pop(account):
                self._drop(room, account)
            return True

    def sessions(self) -> list[Session]:
        """Every open session, logged in or not."""
        with self._lock:
            return list(self._sessions.values())

    def session(self, session_id: int) -> Session | None:
        with self._lock:
            return self._sessions.get(session_id)

    # -- membership -------------------------------------------------------------------

    def join(self, account: int, room: str) -> None:
        with self._lock:
            if account in self._by_account:
                self._rooms_of[account].add(room)
                self._room(room).online.add(account)
                self._invalidate((room,))

    def leave(self, account: int, room: str) -> None:
        with self._lock:
            rooms = self._rooms_of.get(account)
            if rooms is not None and room in rooms:
                rooms.discard(room)
                self._drop(room, account)

    def showed(self, session: Session, room: str, page: Page) -> None:
        """``session`` was just sent ``page``, the latest history of ``room`` it joined.

        Nothing to do here: under the sequencer, all that is stored is delivered. A
        cluster hub delivers what other nodes stored later, and must not repeat the page.
        """

    def flush(self) -> None:
        """Deliver what is stored; here it already is. A cluster hub delivers from its
        own thread, and waits for it before the service ends the sessions."""

    def _room(self, name: str) -> Room:
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = Room(name)
        return room

    def _drop(self, name: str, account: int) -> None:
        room = self._rooms.get(name)
        if room is not None:
            room.online.discard(account)
            room.audiences = None
            if not room.online:
                del self._rooms[name]

    def _invalidate(self, names: Iterable[str]) -> None:
        for name in names:
            room = self._rooms.get(name)
            if room is not None:
                room.audiences = None

    # -- questions --------------------------------------------------------------------

    def is_online(self, account: int) -> bool:
        with self._lock:
            return account in self._by_account

    def in_room(self, account: int, room: str) -> bool:
        with self._lock:
            return room in self._rooms_of.get(account, ())

    def online_accounts(self) -> list[int]:
        with self._lock:
            return list(self._by_account)

    def sessions_of(self, account: int) -> list[Session]:
        with self._lock:
            return list(self._by_account.get(account, ()))

    def room_mates(self, account: int) -> set[int]:
        """Online accounts that share at least one room with ``account`` (itself excluded)."""
        with self._lock:
            mates: set[int] = set()
            for name in self._rooms_of.get(account, ()):
                mates |= self._rooms[name].online
            mates.discard(account)
            return mates

    # -- delivery ---------------------------------------------------------------------

    def to_room(self, name: str, notice: Notice, *, skip: Session | None = None) -> None:
        """Every session of every online member of room ``name`` (but ``skip``)."""
        with self._lock:
            room = self._rooms.get(name)
            if room is None:
                return
            audiences = room.audiences
            if audiences is None:
                audiences = room.audiences = audiences_of(
                    s.outbox for account in room.online for s in self._by_account[account]
                )
        outbox = None if skip is None else skip.outbox
        for audience in audiences:
            audience.tell(notice, outbox)

    def to_accounts(self, accounts: Iterable[int], notice: Notice) -> None:
        """Every session of each of ``accounts`` (each account once)."""
        with self._lock:
            outboxes = [s.outbox for a in set(accounts) for s in self._by_account.get(a, ())]
        for audience in audiences_of(outboxes):
            audience.tell(notice)
