"""Conversations as the person sees them: messages in id order, notices, unread counts.

Unread counts follow the read marker (``read_up_to``): what the server stored for this
user, moved forward by reading here or on another device. A message counts as unread
when its id is above the marker and someone else wrote it; a mention of the user counts
again, separately.

Pure data, touched only on the window's thread. Messages are keyed by id, so the same
message arriving twice (live, then again in a history page after a reconnect) is shown
once; a message that lands anywhere but the end (a gap filled, an older page) is reported
as such so the view redraws instead of appending.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import re
from dataclasses import dataclass, field

from chatsecure.names import normalize_room, username_key
from chatsecure.protocol import FileInfo, Message


class Kind(enum.Enum):
    ROOM = "room"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True, order=True)
class ConvKey:
    """A conversation: a room by its name, or a direct chat by the peer's case-folded name."""

    kind: Kind
    key: str

    @classmethod
    def room(cls, name: str) -> ConvKey:
        return cls(Kind.ROOM, normalize_room(name) or name.lower())

    @classmethod
    def direct(cls, peer: str) -> ConvKey:
        return cls(Kind.DIRECT, username_key(peer))


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a chat view; ``order`` sorts it among the others."""

    order: tuple[int, int]  # (message id, 0) or (id of the message it follows, notice number)
    ts: str
    text: str
    sender: str | None = None  # None for a notice
    own: bool = False
    id: int | None = None
    edited: bool = False
    deleted: bool = False
    mention: bool = False  # someone else's message that names this user with @
    file: FileInfo | None = None  # a shared file: its text is the file's name


ROLES_THAT_MODERATE = ("owner", "moderator")


@dataclass(slots=True)
class Member:
    name: str
    online: bool
    role: str | None = None  # owner, moderator or member; None from a server without rooms2


@dataclass(slots=True)
class Conversation:
    key: ConvKey
    title: str  # the room name, or the peer's name as the server spells it
    lines: list[Line] = field(default_factory=list)
    ids: set[int] = field(default_factory=set)
    read_up_to: int = 0  # the read marker: messages up to this id have been read
    divider_id: int | None = None  # the first unread message when the view was opened
    topic: str = ""
    private: bool = False
    role: str | None = None  # this user's role in the room
    last_id: int = 0  # the newest message id seen; gap filling starts after it
    oldest_id: int | None = None  # paging back asks for messages before it
    has_older: bool = False
    loading_older: bool = False
    cleared_through: int = 0  # messages up to this id were cleared from the view
    members: dict[str, Member] = field(default_factory=dict)
    _notices: int = 0

    @property
    def is_room(self) -> bool:
        return self.key.kind is Kind.ROOM

    def unread_lines(self) -> list[Line]:
        return [
            line
            for line in self.lines
            if line.id is not None and line.id > self.read_up_to and not line.own
            and not line.deleted
        ]  # fmt: skip

    @property
    def unread(self) -> int:
        return len(self.unread_lines())

    @property
    def mentions(self) -> int:
        return sum(1 for line in self.unread_lines() if line.mention)

    @property
    def can_moderate(self) -> bool:
        """Invite, set the topic, kick, ban and delete others' messages (room owners and
        moderators; a server admin may too, and learns so from the server's answer)."""
        return self.is_room and self.role in ROLES_THAT_MODERATE

    @property
    def can_set_roles(self) -> bool:
        return self.is_room and self.role == "owner"

    def mark_read(self, up_to: int | None = None) -> bool:
        """Move the marker forward (to the newest message by default); ``True`` if it moved."""
        target = self.last_id if up_to is None else up_to
        if target <= self.read_up_to:
            return False
        self.read_up_to = target
        return True

    def line_of(self, message_id: int) -> int | None:
        """The index in ``lines`` of the message ``message_id``, if it is shown."""
        if message_id not in self.ids:
            return None
        for index, line in enumerate(self.lines):
            if line.id == message_id:
                return index
        return None

    def edit_line(self, message_id: int, text: str, mention: bool) -> bool:
        """Show the new text of an edited message; ``False`` if it is not shown here."""
        index = self.line_of(message_id)
        if index is None:
            return False
        self.lines[index] = dataclasses.replace(
            self.lines[index], text=text, edited=True, mention=mention
        )
        return True

    def delete_line(self, message_id: int) -> bool:
        """Keep the line but not the text: a placeholder shows where it was."""
        index = self.line_of(message_id)
        if index is None:
            return False
        self.lines[index] = dataclasses.replace(
            self.lines[index], text="", deleted=True, edited=False, mention=False, file=None
        )
        return True

    def last_own_message(self) -> Line | None:
        """What Up in an empty entry edits: this user's newest message still standing."""
        for line in reversed(self.lines):
            if line.own and line.id is not None and not line.deleted:
                return line
        return None

    def add(self, line: Line) -> bool:
        """Insert ``line`` in order; ``True`` if it went at the end."""
        at_end = not self.lines or line.order > self.lines[-1].order
        if at_end:
            self.lines.append(line)
        else:
            bisect.insort(self.lines, line, key=lambda known: known.order)
        return at_end

    def notice(self, ts: str, text: str) -> Line:
        self._notices += 1
        line = Line(order=(self.last_id, self._notices), ts=ts, text=text)
        self.add(line)
        return line

    def sorted_members(self) -> list[Member]:
        """Online first, then by name: who can answer now is what people look for."""
        return sorted(self.members.values(), key=lambda m: (not m.online, m.name.lower()))


@dataclass(frozen=True, slots=True)
class Added:
    """What ``ChatState.add_messages`` changed in one conversation."""

    key: ConvKey
    lines: list[Line]
    at_end: bool  # False: some went before existing lines, so redraw


class ChatState:
    """Every conversation of one logged-in user, and which one is on screen."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.conversations: dict[ConvKey, Conversation] = {}
        self.current: ConvKey | None = None
        self.focused = True  # the window has the focus: what arrives on screen is read
        self._mention = re.compile(
            # Whole word: usernames may hold '.' and '-', but "@alice." ends a sentence.
            rf"(?<![A-Za-z0-9_.@-])@{re.escape(me)}(?![A-Za-z0-9_-])(?!\.[A-Za-z0-9_])",
            re.IGNORECASE,
        )

    def mentions_me(self, text: str) -> bool:
        return self._mention.search(text) is not None

    def is_me(self, name: str) -> bool:
        return username_key(name) == username_key(self.me)

    def ensure(self, key: ConvKey, title: str) -> Conversation:
        conv = self.conversations.get(key)
        if conv is None:
            conv = self.conversations[key] = Conversation(key, title)
        return conv

    def ensure_room(self, name: str) -> Conversation:
        key = ConvKey.room(name)
        return self.ensure(key, key.key)

    def ensure_direct(self, peer: str) -> Conversation:
        return self.ensure(ConvKey.direct(peer), peer)

    def remove(self, key: ConvKey) -> None:
        self.conversations.pop(key, None)
        if self.current == key:
            self.current = self.ordered()[0].key if self.conversations else None

    def ordered(self) -> list[Conversation]:
        """Rooms by name, then direct chats by name: the sidebar's order."""
        return sorted(
            self.conversations.values(), key=lambda c: (c.key.kind is not Kind.ROOM, c.key)
        )

    def select(self, key: ConvKey) -> Conversation:
        """Show ``key``: the divider goes at its first unread message, and it is now read."""
        self.current = key
        conv = self.conversations[key]
        first = next(iter(conv.unread_lines()), None)
        conv.divider_id = first.id if first is not None else None
        conv.mark_read()
        return conv

    def find_message(self, message_id: int) -> Conversation | None:
        """The conversation showing ``message_id`` (ids are unique across the server)."""
        for conv in self.conversations.values():
            if message_id in conv.ids:
                return conv
        return None

    def key_of(self, message: Message) -> tuple[ConvKey, str]:
        if message.room is not None:
            return ConvKey.room(message.room), message.room
        peer = message.to if self.is_me(message.from_) and message.to else message.from_
        return ConvKey.direct(peer), peer

    def add_messages(
        self, messages: list[Message], *, unread: bool, older: bool = False
    ) -> list[Added]:
        """Add messages not seen before; ``unread`` counts them where not on screen.

        ``older`` marks an explicit page back, the one way cleared messages come back.
        """
        changes: dict[ConvKey, Added] = {}
        for message in messages:
            key, title = self.key_of(message)
            conv = self.ensure(key, title)
            if message.id in conv.ids or (message.id <= conv.cleared_through and not older):
                continue
            conv.ids.add(message.id)
            own = self.is_me(message.from_)
            text = message.text or ""
            line = Line(
                order=(message.id, 0),
                ts=message.ts,
                text=text,
                sender=message.from_,
                own=own,
                id=message.id,
                edited=message.edited_ts is not None,
                deleted=message.deleted,
                mention=not own and not message.deleted and self.mentions_me(text),
                file=None if message.deleted else message.file,
            )
            at_end = conv.add(line)
            conv.last_id = max(conv.last_id, message.id)
            if conv.oldest_id is None or message.id < conv.oldest_id:
                conv.oldest_id = message.id
            if not unread or (key == self.current and self.focused):
                conv.mark_read(message.id)
            change = changes.get(key)
            if change is None:
                changes[key] = Added(key, [line], at_end)
            else:
                changes[key] = Added(key, [*change.lines, line], change.at_end and at_end)
        return list(changes.values())

    def clear(self, key: ConvKey, ts: str) -> Line:
        """Empty this view only: the server keeps every message, and Load older brings them back."""
        conv = self.conversations[key]
        conv.lines.clear()
        conv.ids.clear()
        conv.cleared_through = conv.last_id
        conv.oldest_id = conv.last_id + 1 if conv.last_id else None
        conv.has_older = conv.last_id > 0
        return conv.notice(
            ts,
            "Chat cleared in this window only; the messages are still on the server "
            "(use Load older to see them again).",
        )
