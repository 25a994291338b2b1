"""Conversations as the person sees them: messages in id order, notices, unread counts.

Pure data, touched only on the window's thread. Messages are keyed by id, so the same
message arriving twice (live, then again in a history page after a reconnect) is shown
once; a message that lands anywhere but the end (a gap filled, an older page) is reported
as such so the view redraws instead of appending.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field

from chatsecure.names import normalize_room, username_key
from chatsecure.protocol import Message


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


@dataclass(slots=True)
class Member:
    name: str
    online: bool


@dataclass(slots=True)
class Conversation:
    key: ConvKey
    title: str  # the room name, or the peer's name as the server spells it
    lines: list[Line] = field(default_factory=list)
    ids: set[int] = field(default_factory=set)
    unread: int = 0
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
        self.current = key
        conv = self.conversations[key]
        conv.unread = 0
        return conv

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
            line = Line(
                order=(message.id, 0),
                ts=message.ts,
                text=message.text,
                sender=message.from_,
                own=own,
                id=message.id,
            )
            at_end = conv.add(line)
            conv.last_id = max(conv.last_id, message.id)
            if conv.oldest_id is None or message.id < conv.oldest_id:
                conv.oldest_id = message.id
            if unread and not own and key != self.current:
                conv.unread += 1
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
