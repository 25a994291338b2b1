"""What the chat service answers to a command: typed replies, or a refusal saying why.

These are the service's own words, not frames: each wire adapter turns them into its
format (a JSON ``welcome``, an IRC ``001`` and ``JOIN``\\ s, ...). ``Label`` is whatever
the client tagged its request with; the service hands it back on the replies untouched.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from chatsecure.storage.store import Page, RoomSummary, StoredMessage

Label = str | int | None


@dataclass(frozen=True, slots=True)
class InRoom:
    room: str


@dataclass(frozen=True, slots=True)
class WithUser:
    """The direct conversation with ``user``."""

    user: str


Conversation = InRoom | WithUser


class Why(enum.Enum):
    """Why the service refused a command."""

    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    NO_SUCH_ROOM = "no_such_room"
    NO_SUCH_USER = "no_such_user"
    NOT_MEMBER = "not_member"
    WEAK_PASSWORD = "weak_password"
    NOT_STORED = "not_stored"  # the store failed; nothing was sent
    NOT_ALLOWED = "not_allowed"  # a limit of the account's, or a right it does not have
    ROOM_EXISTS = "room_exists"
    BANNED = "banned"
    NO_SUCH_MESSAGE = "no_such_message"  # unknown, or not the session's to read
    FILE_TOO_LARGE = "file_too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    BAD_UPLOAD = "bad_upload"  # wrong offset, size or hash; unknown or expired upload
    NO_SUCH_FILE = "no_such_file"  # unknown, or not the session's to fetch
    UNSUPPORTED = "unsupported"  # a feature this server has switched off


class Refusal(Exception):
    """A command the service will not carry out, and what to tell the client."""

    def __init__(
        self,
        why: Why,
        message: str,
        retry_after: int | None = None,
        *,
        received: int | None = None,
    ) -> None:
        super().__init__(message)
        self.why = why
        self.message = message
        self.retry_after = retry_after
        self.received = received  # with BAD_UPLOAD: where the upload may resume


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Messages of one conversation, oldest first; ``more`` if the direction asked goes on."""

    conversation: Conversation
    messages: Sequence[StoredMessage]
    more: bool
    read_up_to: int | None = None  # the reader's marker, told with the pages of a login

    @classmethod
    def of(
        cls, conversation: Conversation, page: Page, read_up_to: int | None = None
    ) -> HistoryPage:
        return cls(conversation, page.messages, page.more, read_up_to)


@dataclass(frozen=True, slots=True)
class Activities:
    """Conversations, each with the time (ms) of its latest message, oldest first."""

    conversations: Sequence[tuple[Conversation, int]]


@dataclass(frozen=True, slots=True)
class RoomMember:
    user: str
    online: bool
    role: str = "member"


@dataclass(frozen=True, slots=True)
class MemberList:
    room: str
    members: Sequence[RoomMember]


@dataclass(frozen=True, slots=True)
class Welcome:
    """A login accepted, with what the client missed: rooms, then direct chats, then members."""

    user: str
    rooms: Sequence[str]
    room_pages: Sequence[HistoryPage]
    direct_pages: Sequence[HistoryPage]
    member_lists: Sequence[MemberList]


@dataclass(frozen=True, slots=True)
class Joined:
    room: str
    page: HistoryPage
    members: MemberList
    topic: str = ""
    private: bool = False
    role: str = "member"


@dataclass(frozen=True, slots=True)
class RoomList:
    rooms: Sequence[RoomSummary]
    more: bool = False  # rooms past this page (ask again from the last name)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message stored under ``id`` (and delivered after this reply); a file's message
    also says the upload's bytes ``received``."""

    id: int
    ts_ms: int
    received: int | None = None


@dataclass(frozen=True, slots=True)
class Found:
    """Search results, newest first; ``more`` if older matches follow."""

    messages: Sequence[StoredMessage]
    more: bool


@dataclass(frozen=True, slots=True)
class UploadSlot:
    """An accepted file offer: send it under ``upload`` in pieces of ``chunk_bytes``."""

    upload: str
    chunk_bytes: int


@dataclass(frozen=True, slots=True)
class Received:
    """The upload holds ``received`` bytes so far."""

    received: int


@dataclass(frozen=True, slots=True)
class FilePiece:
    """Bytes of a fetched file from ``offset``; ``last`` on the final piece."""

    file_id: str
    offset: int
    data: bytes
    last: bool


@dataclass(frozen=True, slots=True)
class Revised:
    """A message's new text is stored, as of ``edited_ms``."""

    edited_ms: int


@dataclass(frozen=True, slots=True)
class Done:
    """The command was carried out; there is nothing more to say."""


Reply = (
    Welcome
    | Joined
    | HistoryPage
    | Activities
    | MemberList
    | RoomList
    | Accepted
    | Revised
    | Done
    | Found
    | UploadSlot
    | Received
    | FilePiece
)
