"""Moderation: invitations, topics, roles, kicks and bans, by a room's owners and moderators.

Who may do what is the contract's table, kept here as data: owners and moderators invite,
set the topic, kick and ban; only owners give roles; owners cannot be kicked, and a
moderator cannot remove another moderator. A server admin may do all of it in any room.
Rights are read from the store at each request, so a role taken away is gone at once.

Each change is stored with a row in the store's journal, then told to this node's
sessions; the journal tells the changes made elsewhere (``core/journal.py``).
"""

from __future__ import annotations

import threading

from chatsecure.server.core.accounts import named
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.notices import (
    Invitation,
    MemberChange,
    Removal,
    RoleChange,
    TopicChange,
)
from chatsecure.server.core.results import Done, Label, Refusal, Why
from chatsecure.server.core.rooms import Rooms
from chatsecure.server.core.session import Session
from chatsecure.storage.store import (
    MODERATING_ROLES,
    LastOwnerError,
    Removed,
    RoomRecord,
    Store,
)

ADMIN = "admin"  # the authority of a server admin, above any role
MODERATORS = frozenset({*MODERATING_ROLES, ADMIN})
OWNERS = frozenset({"owner", ADMIN})


def _role_refused(room: str) -> Refusal:
    return Refusal(Why.NOT_ALLOWED, f"your role in {room!r} does not allow it")


class Moderation:
    def __init__(self, *, store: Store, hub: Hub, rooms: Rooms, sequencer: threading.Lock) -> None:
        self._store = store
        self._hub = hub
        self._rooms = rooms
        self._sequencer = sequencer

    # -- requests ---------------------------------------------------------------------

    def invite(self, session: Session, label: Label, room: str, user: str) -> None:
        record, _ = self._authorized(session, room, MODERATORS)
        target = named(self._store, user)
        if not self._store.invite(
            record.id, target.id, session.account_id, origin=self._rooms.origin
        ):  # the role was taken away since it was read
            raise _role_refused(room)
        self.tell_invited(target.id, Invitation(record.name, session.user, record.topic))
        session.outbox.reply(label, Done())

    def set_topic(self, session: Session, label: Label, room: str, topic: str) -> None:
        record, _ = self._authorized(session, room, MODERATORS)
        self._store.set_topic(record.id, topic, by=session.user, origin=self._rooms.origin)
        self.tell_room(TopicChange(record.name, topic, session.user))
        session.outbox.reply(label, Done())

    def set_role(self, session: Session, label: Label, room: str, user: str, role: str) -> None:
        record, _ = self._authorized(session, room, OWNERS)
        target = named(self._store, user)
        if target.id == session.account_id:
            raise Refusal(Why.NOT_ALLOWED, "another owner must change your role")
        try:
            changed = self._store.set_role(
                record.id, target.id, role, by=session.user, origin=self._rooms.origin
            )
        except LastOwnerError as last:
            raise Refusal(Why.NOT_ALLOWED, str(last)) from None
        if not changed:
            raise Refusal(Why.NOT_MEMBER, f"{target.name} is not in {record.name!r}")
        self.tell_room(RoleChange(record.name, target.name, role, session.user))
        session.outbox.reply(label, Done())

    def remove(
        self, session: Session, label: Label, room: str, user: str, *, reason: str, ban: bool
    ) -> None:
        """Kick ``user`` from ``room`` or, with ``ban``, also keep them out."""
        record, authority = self._authorized(session, room, MODERATORS)
        target = named(self._store, user)
        if target.id == session.account_id:
            raise Refusal(Why.NOT_ALLOWED, "leave the room instead of removing yourself")
        role = self._store.role_of(target.id, record.id)
        if role == "owner" or (role == "moderator" and authority == "moderator"):
            raise Refusal(Why.NOT_ALLOWED, f"you may not remove the {role} {target.name}")
        removed = self._store.remove_member(
            record.id, target.id, by=session.user, reason=reason, ban=ban, origin=self._rooms.origin
        )
        if not removed:
            raise Refusal(Why.NOT_MEMBER, f"{target.name} is not in {record.name!r}")
        if removed is Removed.MEMBER:  # a banned non-member is told nothing, nor is the room
            removal = Removal(record.name, session.user, reason, ban)
            self.tell_removed(target.id, target.name, removal)
        session.outbox.reply(label, Done())

    def unban(self, session: Session, label: Label, room: str, user: str) -> None:
        record, _ = self._authorized(session, room, MODERATORS)
        target = named(self._store, user)
        self._store.unban(record.id, target.id, origin=self._rooms.origin)
        session.outbox.reply(label, Done())

    def _authorized(
        self, session: Session, room: str, needed: frozenset[str]
    ) -> tuple[RoomRecord, str]:
        """The room and the session's authority in it, if that is one of ``needed``.

        A private room the session is outside of is missing to it, unless it is an admin.
        """
        self._rooms.count_change(session)
        admin = self._rooms.is_admin(session)
        view = self._rooms.visible(session, room, admin=admin)
        authority = ADMIN if admin else view.role
        if authority not in needed:
            raise _role_refused(room)
        return view.room, authority

    # -- telling sessions (also for changes the journal reports) -------------------------

    def tell_invited(self, account_id: int, invitation: Invitation) -> None:
        self._hub.to_accounts((account_id,), invitation)

    def tell_room(self, change: TopicChange | RoleChange) -> None:
        self._hub.to_room(change.room, change)

    def tell_removed(self, account_id: int, user: str, removal: Removal) -> None:
        """The removed account stops hearing the room and is told why; the rest see it leave."""
        with self._sequencer:
            self._hub.leave(account_id, removal.room)
            self._hub.to_room(removal.room, MemberChange(removal.room, user, False))
            self._hub.to_accounts((account_id,), removal)
