"""What the chat service tells sessions unasked: a message, a member or presence change.

A stored message is told as the store's own ``StoredMessage`` (no wrapper on the hot
path). Like the replies, these are the service's words; each wire adapter encodes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatsecure.server.core.results import Joined
from chatsecure.storage.store import StoredMessage


@dataclass(frozen=True, slots=True)
class MemberChange:
    room: str
    user: str
    joined: bool  # False: left


@dataclass(frozen=True, slots=True)
class PresenceChange:
    user: str
    online: bool


@dataclass(frozen=True, slots=True)
class Admitted:
    """To each session of an account made a member of a room elsewhere (by the admin
    CLI's ``room create --owner``): the room as the account's own join would show it.
    Told to one session at a time, never to an audience."""

    joined: Joined


@dataclass(frozen=True, slots=True)
class Invitation:
    """To the invited account: it may now join ``room``."""

    room: str
    by: str
    topic: str


@dataclass(frozen=True, slots=True)
class TopicChange:
    room: str
    topic: str
    by: str


@dataclass(frozen=True, slots=True)
class RoleChange:
    room: str
    user: str
    role: str
    by: str


@dataclass(frozen=True, slots=True)
class Removal:
    """To the account removed from ``room`` by a moderator: kicked, or banned."""

    room: str
    by: str
    reason: str
    ban: bool


@dataclass(frozen=True, slots=True)
class MessageEdited:
    """Message ``id`` of a room (``room``) or a direct chat (``to``: its recipient) has new text."""

    id: int
    text: str
    edited_ms: int
    by: str
    room: str | None = None
    to: str | None = None


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    id: int
    by: str
    room: str | None = None
    to: str | None = None


@dataclass(frozen=True, slots=True)
class ReadMoved:
    """The account read a conversation (``room``, or the direct chat ``with_``) up to an id."""

    up_to: int
    room: str | None = None
    with_: str | None = None


@dataclass(frozen=True, slots=True)
class StillThere:
    """The session has been quiet for a while: the client should show a sign of life."""


Notice = (
    StoredMessage
    | MemberChange
    | PresenceChange
    | StillThere
    | Admitted
    | Invitation
    | TopicChange
    | RoleChange
    | Removal
    | MessageEdited
    | MessageDeleted
    | ReadMoved
)


class EndReason(enum.Enum):
    """Why the service ends a session."""

    LOGOUT = "logout"
    SHUTDOWN = "shutdown"
    LOGIN_TIMEOUT = "login_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    ACCOUNT_DISABLED = "account_disabled"
    CREDENTIALS_CHANGED = "credentials_changed"  # the password changed since this login
    KICKED = "kicked"  # by an administrator
    BROKE_PROTOCOL = "broke_protocol"  # its adapter already told the client how
