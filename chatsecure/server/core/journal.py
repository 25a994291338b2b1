"""The store's journal of changes that are not messages, as news for this node's sessions.

A new room's owner, a topic, role, kick, ban, invitation, edit, deletion or read marker
made by the admin CLI or by another node of a cluster is stored with a journal row; this
node reads the rows made elsewhere on the housekeeping's poll and tells its sessions as if
the change were its own. Its own rows it skips: it told its sessions when it made them.
"""

from __future__ import annotations

import logging

from chatsecure.server.core.edits import Edits
from chatsecure.server.core.moderation import Moderation
from chatsecure.server.core.notices import (
    Invitation,
    MessageDeleted,
    MessageEdited,
    ReadMoved,
    Removal,
    RoleChange,
    TopicChange,
)
from chatsecure.server.core.reads import ReadMarkers
from chatsecure.server.core.rooms import Rooms
from chatsecure.storage.store import RoomEvent, Store

log = logging.getLogger(__name__)

# Journal rows are news for the nodes running now: an hour covers any poll.
KEEP_MS = 3_600_000


class Journal:
    def __init__(
        self,
        *,
        store: Store,
        rooms: Rooms,
        moderation: Moderation,
        edits: Edits,
        reads: ReadMarkers,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._moderation = moderation
        self._edits = edits
        self._reads = reads
        self._seen: int | None = None  # read from the store at the first poll

    def poll(self) -> None:
        """Tell this node's sessions of every change made elsewhere since the last poll."""
        if self._seen is None:
            self._seen = self._store.last_room_event_id()
            return
        while rows := self._store.room_events_after(self._seen, not_from=self._rooms.origin):
            for row in rows:
                self._seen = row.id
                self._apply(row)

    def prune(self, now_ms: int) -> None:
        self._store.prune_room_events(now_ms - KEEP_MS)

    def _apply(self, row: RoomEvent) -> None:
        kind, by, detail = row.kind, row.by or "", row.detail or ""
        if kind == "joined" and row.room is not None and row.account_id is not None:
            self._rooms.admit(row.account_id, row.user or "", row.room)
        elif kind == "topic" and row.room is not None:
            self._moderation.tell_room(TopicChange(row.room, detail, by))
        elif kind == "role" and row.room is not None and row.user is not None:
            self._moderation.tell_room(RoleChange(row.room, row.user, detail, by))
        elif kind == "kicked" and row.room is not None and row.account_id is not None:
            removal = Removal(row.room, by, detail, bool(row.flag))
            self._moderation.tell_removed(row.account_id, row.user or "", removal)
        elif kind == "invited" and row.room is not None and row.account_id is not None:
            self._moderation.tell_invited(row.account_id, Invitation(row.room, by, detail))
        elif kind in ("edited", "deleted") and row.message_id is not None:
            self._tell_revision(row)
        elif kind == "read" and row.account_id is not None and row.message_id is not None:
            news = ReadMoved(row.message_id, room=row.room, with_=row.user)
            self._reads.tell(row.account_id, news)
        else:
            log.warning("skipped a journal row this server does not know: %s", kind)

    def _tell_revision(self, row: RoomEvent) -> None:
        assert row.message_id is not None
        ref = self._store.message_ref(row.message_id)
        if ref is None:  # purged since
            return
        m, by = ref.message, row.by or ""
        if row.kind == "deleted":
            self._edits.tell(ref, MessageDeleted(m.id, by, m.room, m.to))
        elif not m.deleted:
            self._edits.tell(
                ref, MessageEdited(m.id, m.text, m.edited_ms or row.at_ms, by, m.room, m.to)
            )
