"""Edits and deletions of stored messages, told to everyone who may read them.

Only the author edits (and not a file's message, which is the file's name); the author, a
room's owners and moderators, and server admins delete, and deleting a file's message
deletes the file once no message refers to it. A message the session may not read is
missing to it (``no_such_message``), so ids cannot be probed. The change is stored
first, then told under the ``sequencer``: a reader that joins meanwhile either reads the
new text in its history or hears the change.
"""

from __future__ import annotations

import threading

from chatsecure.server.core.files import Files
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.messages import Messages
from chatsecure.server.core.moderation import MODERATORS
from chatsecure.server.core.notices import MessageDeleted, MessageEdited
from chatsecure.server.core.results import Done, Label, Refusal, Revised, Why
from chatsecure.server.core.rooms import Rooms
from chatsecure.server.core.session import Session
from chatsecure.storage.store import MessageRef, Store, now_ms


class Edits:
    def __init__(
        self,
        *,
        store: Store,
        hub: Hub,
        rooms: Rooms,
        messages: Messages,
        files: Files,
        sequencer: threading.Lock,
    ) -> None:
        self._store = store
        self._hub = hub
        self._rooms = rooms
        self._messages = messages
        self._files = files
        self._sequencer = sequencer

    def edit(self, session: Session, label: Label, message_id: int, text: str) -> None:
        self._messages.pace(session, "changing messages")
        ref = self._readable(session, message_id)
        if ref.sender_id != session.account_id:
            raise Refusal(Why.NOT_ALLOWED, "only its author may edit a message")
        if ref.message.file is not None:
            raise Refusal(Why.NOT_ALLOWED, "a file's message is its name; it cannot be edited")
        edited_ms = now_ms()
        if not self._store.edit_message(
            message_id, text, edited_ms=edited_ms, by=session.user, origin=self._rooms.origin
        ):
            raise Refusal(Why.NO_SUCH_MESSAGE, f"no message {message_id}")
        message = ref.message
        self.tell(
            ref, MessageEdited(message_id, text, edited_ms, session.user, message.room, message.to)
        )
        session.outbox.reply(label, Revised(edited_ms))

    def delete(self, session: Session, label: Label, message_id: int) -> None:
        self._messages.pace(session, "changing messages")
        admin = self._rooms.is_admin(session)
        ref = self._readable(session, message_id, admin=admin)
        if ref.sender_id != session.account_id and not admin and not self._moderates(session, ref):
            raise Refusal(Why.NOT_ALLOWED, "only its author or a moderator may delete a message")
        if not self._store.delete_message(message_id, by=session.user, origin=self._rooms.origin):
            raise Refusal(Why.NO_SUCH_MESSAGE, f"no message {message_id}")
        message = ref.message
        self.tell(ref, MessageDeleted(message_id, session.user, message.room, message.to))
        if message.file is not None:
            self._files.collect()  # before the ok: the file is gone when the client hears it
        session.outbox.reply(label, Done())

    def _readable(self, session: Session, message_id: int, *, admin: bool = False) -> MessageRef:
        """The message if the session may read it (an admin: any room's), and it is not
        deleted; else it is missing."""
        ref = self._store.message_ref(message_id)
        if ref is None or ref.message.deleted or not self._may_read(session, ref, admin=admin):
            raise Refusal(Why.NO_SUCH_MESSAGE, f"no message {message_id}")
        return ref

    def _may_read(self, session: Session, ref: MessageRef, *, admin: bool) -> bool:
        room = ref.message.room
        if room is not None:
            return admin or self._hub.in_room(session.account_id, room)
        return ref.pair is not None and session.account_id in ref.pair

    def _moderates(self, session: Session, ref: MessageRef) -> bool:
        if ref.room_id is None:
            return False
        return self._store.role_of(session.account_id, ref.room_id) in MODERATORS

    def tell(self, ref: MessageRef, change: MessageEdited | MessageDeleted) -> None:
        """Everyone who may read the message hears the change (also one made elsewhere)."""
        with self._sequencer:
            if change.room is not None:
                self._hub.to_room(change.room, change)
            elif ref.pair is not None:
                self._hub.to_accounts(ref.pair, change)
