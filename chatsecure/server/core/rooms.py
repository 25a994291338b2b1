"""Rooms and membership: create, join, leave, who is in a room, and which rooms there are.

Membership is stored first, then the hub is changed under the ``sequencer``, so the
history a joiner is sent and the live messages after it meet with no gap or overlap.

A private room does not exist for those outside it: every refusal to a non-member is
decided on one lookup of the room as the account stands to it (``Store.room_view``),
whether it is private or missing, so the two answers are the same words after the same
work.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from chatsecure.server.core import events
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.limits import AccountBuckets
from chatsecure.server.core.live import LiveSettings
from chatsecure.server.core.notices import Admitted, MemberChange
from chatsecure.server.core.results import (
    Done,
    HistoryPage,
    InRoom,
    Joined,
    Label,
    MemberList,
    Refusal,
    RoomList,
    RoomMember,
    Why,
)
from chatsecure.server.core.session import Session
from chatsecure.storage.store import (
    BannedError,
    NoSuchRoomError,
    Page,
    RoomCaps,
    RoomExistsError,
    RoomLimitError,
    RoomMemberRecord,
    RoomView,
    Store,
)

log = logging.getLogger(__name__)

# The most rooms one `rooms` reply lists: as many as the server allows by default.
ROOM_PAGE = 1000


@dataclass(frozen=True, slots=True)
class _Entry:
    """What a member is shown of a room besides its history and members."""

    room: str
    room_id: int
    topic: str
    private: bool
    role: str


class Rooms:
    def __init__(
        self,
        *,
        settings: LiveSettings,
        store: Store,
        hub: Hub,
        sequencer: threading.Lock,
        observers: events.Observers,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._store = store
        self._hub = hub
        self._sequencer = sequencer
        self._observers = observers
        self._ids: dict[str, int] = {}  # room name -> id; rooms are never renamed
        self._changes = AccountBuckets(self._change_rate, clock)

    @property
    def origin(self) -> str:
        """Who the store's journal says made a change here: this node."""
        return self._settings.now.cluster.node

    def _change_rate(self) -> tuple[float, int]:
        limits = self._settings.now.limits
        return limits.room_changes_per_second, limits.room_change_burst

    def count_change(self, session: Session) -> None:
        """A join, leave or moderation tells every member: refuse one past the account's rate.

        Only changes count: an IRC client's autojoin of rooms it is in already costs no
        token, however many rooms it lists.
        """
        wait = self._changes.take(session.account_id)
        if wait:
            raise Refusal(Why.RATE_LIMITED, "changing rooms too fast", retry_after=math.ceil(wait))

    def learn(self, rooms: Iterable[tuple[int, str]]) -> None:
        """Remember the ids of ``rooms`` (id, name), e.g. read at a login."""
        for room_id, name in rooms:
            self._ids[name] = room_id

    def known_member(self, session: Session, room: str) -> bool:
        """Whether ``member_room_id`` answers from memory: the account is in ``room``
        and its id is known."""
        return (
            session.account is not None
            and room in self._ids
            and self._hub.in_room(session.account_id, room)
        )

    def member_room_id(self, session: Session, room: str) -> int:
        """The room's id if the session's account is in it; else refuse."""
        if self._hub.in_room(session.account_id, room):
            room_id = self._ids.get(room)
            if room_id is None:
                room_id = self.visible(session, room).room.id
                self._ids[room] = room_id
            return room_id
        self.visible(session, room)
        raise Refusal(Why.NOT_MEMBER, f"you are not in {room!r}")

    def visible(self, session: Session, room: str, *, admin: bool = False) -> RoomView:
        """The room and the account's role in it, unless it is missing or private to an
        account outside it (``admin``: a server admin, who sees every room)."""
        view = self._store.room_view(room, session.account_id)
        if view is None or (view.room.private and view.role is None and not admin):
            raise Refusal(Why.NO_SUCH_ROOM, f"no room named {room!r}")
        return view

    def member_list(self, room: str, members: Iterable[RoomMemberRecord]) -> MemberList:
        """``members`` of ``room``, each with its role and whether it is online."""
        online = self._hub.is_online
        return MemberList(room, [RoomMember(m.name, online(m.account_id), m.role) for m in members])

    def _caps(self) -> RoomCaps:
        rooms = self._settings.now.rooms
        return RoomCaps(rooms.max_rooms, rooms.max_per_creator)

    def create(
        self, session: Session, label: Label, room: str, *, private: bool, topic: str
    ) -> None:
        """A new room, the session's account its owner; only admins may, if users may not."""
        self.count_change(session)
        if not self._settings.now.rooms.users_can_create and not self.is_admin(session):
            raise Refusal(Why.NOT_ALLOWED, "only server admins may create rooms")
        try:
            room_id = self._store.create_room(
                room,
                creator_id=session.account_id,
                private=private,
                topic=topic,
                caps=self._caps(),
                origin=self.origin,
            )
        except RoomExistsError:
            raise Refusal(Why.ROOM_EXISTS, f"a room named {room!r} already exists") from None
        except RoomLimitError as capped:
            raise Refusal(Why.NOT_ALLOWED, str(capped)) from None
        self._enter(session, label, room, room_id, newly=True)

    def is_admin(self, session: Session) -> bool:
        """Whether the session's account is a server admin now (read afresh: an admin
        who loses the right loses it at once)."""
        account = self._store.get_account(session.user)
        return account is not None and account.id == session.account_id and account.is_admin

    def join(self, session: Session, label: Label, room: str) -> None:
        if not self._hub.in_room(session.account_id, room):  # a client re-joining is no churn
            self.count_change(session)
        try:
            room_id, newly = self._store.join_room(
                session.account_id,
                room,
                create=self._settings.now.rooms.users_can_create,
                caps=self._caps(),
            )
        except NoSuchRoomError:
            raise Refusal(Why.NO_SUCH_ROOM, f"no room named {room!r}") from None
        except BannedError:
            raise Refusal(Why.BANNED, f"you are banned from {room!r}") from None
        except RoomLimitError as capped:
            raise Refusal(Why.NOT_ALLOWED, str(capped)) from None
        self._enter(session, label, room, room_id, newly=newly)

    def _enter(
        self, session: Session, label: Label, room: str, room_id: int, *, newly: bool
    ) -> None:
        """The session's account is a member: route the room to it, then send the latest
        history and members; tell the others if it is new."""
        entry = self._entry(room, room_id, self._store.room_view(room, session.account_id))
        with self._sequencer:
            session.outbox.reply(label, self._route(session.account_id, entry, (session,)))
            if newly:
                self._tell_joined(session.user, room, skip=session)

    def admit(self, account_id: int, user: str, room: str) -> None:
        """The account was made a member of ``room`` elsewhere (the admin CLI, another
        node): its sessions here follow the room, each shown it as by a join of its own,
        and the members here see it join. Nothing if its sessions follow the room already.
        """
        view = self._store.room_view(room, account_id)
        if view is None or view.role is None:
            return  # gone again since
        entry = self._entry(room, view.room.id, view)
        with self._sequencer:
            if self._hub.in_room(account_id, room):
                return
            self._tell_joined(user, room)  # before the account's own sessions hear the room
            sessions = self._hub.sessions_of(account_id)
            if sessions:
                joined = self._route(account_id, entry, sessions)
                for session in sessions:
                    session.outbox.notify(Admitted(joined))

    def _entry(self, room: str, room_id: int, view: RoomView | None) -> _Entry:
        """What the account is shown of ``room``, from ``view``: read before the sequencer
        is taken, since it holds up every delivery."""
        self._ids[room] = room_id
        role = (view.role if view is not None else None) or "member"
        topic, private = (view.room.topic, view.room.private) if view is not None else ("", False)
        return _Entry(room, room_id, topic, private, role)

    def _route(self, account_id: int, entry: _Entry, sessions: Sequence[Session]) -> Joined:
        """Under the sequencer: the account's ``sessions`` receive the room from now on;
        what each of them is shown of it, its latest history and members included."""
        room, limit = entry.room, self._settings.now.history.on_login
        self._hub.join(account_id, room)
        page = self._store.room_history(entry.room_id, limit=limit) if limit else Page([], False)
        for session in sessions:
            self._hub.showed(session, room, page)
        members = self.member_list(room, self._store.room_members(entry.room_id))
        history = HistoryPage.of(InRoom(room), page)
        return Joined(room, history, members, entry.topic, entry.private, entry.role)

    def _tell_joined(self, user: str, room: str, *, skip: Session | None = None) -> None:
        log.info("%s joined %s", user, room)
        self._observers.emit(events.RoomJoined(user, room))
        self._hub.to_room(room, MemberChange(room, user, True), skip=skip)

    def leave(self, session: Session, label: Label, room: str) -> None:
        room_id = self.member_room_id(session, room)
        self.count_change(session)
        self._store.leave_room(session.account_id, room_id)
        with self._sequencer:
            self._hub.to_room(room, MemberChange(room, session.user, False), skip=session)
            self._hub.leave(session.account_id, room)
            session.outbox.reply(label, Done())
        log.info("%s left %s", session.user, room)
        self._observers.emit(events.RoomLeft(session.user, room))

    def who(self, session: Session, label: Label, room: str) -> None:
        room_id = self.member_room_id(session, room)
        members = self._store.room_members(room_id)
        session.outbox.reply(label, self.member_list(room, members))

    def list(
        self, session: Session, label: Label, *, after: str | None = None, limit: int = ROOM_PAGE
    ) -> None:
        """One page of the rooms by name, from after ``after``; ``more`` if others follow."""
        rooms = self._store.list_rooms(session.account_id, after=after, limit=limit + 1)
        session.outbox.reply(label, RoomList(rooms[:limit], more=len(rooms) > limit))
