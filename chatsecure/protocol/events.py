"""One small immutable event per frame type, so the code past the codec trusts typed values.

Every event knows its wire ``type`` and builds its own JSON object in ``to_wire()``:
optional fields that are ``None`` are left out, and a frame that answers nothing
carries no ``req``. Events raise ``LocalProtocolError`` when built with a combination
the contract forbids (e.g. a ``send`` to both a room and a user), so such a frame is
never put on the wire.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from chatsecure.protocol.errors import ErrorCode, LocalProtocolError

Req = str | int
"""A client-chosen request id: a string, or an integer, of at most 64 characters."""

MemberEvent = Literal["joined", "left"]
Role = Literal["owner", "moderator", "member"]
ROLES: tuple[Role, ...] = ("owner", "moderator", "member")
PresenceStatus = Literal["online", "offline"]
MEMBER_EVENTS: tuple[MemberEvent, ...] = ("joined", "left")
PRESENCE_STATUSES: tuple[PresenceStatus, ...] = ("online", "offline")

DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 500
MAX_ROOMS_LIMIT = 1000  # an addition: the most rooms one page of `rooms` may ask for
DEFAULT_SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 100


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _compact(wire: dict[str, object]) -> dict[str, object]:
    """The frame without its ``None`` fields, which the contract says to omit."""
    return {key: value for key, value in wire.items() if value is not None}


def _require_one_of(frame: str, code: ErrorCode, names: str, a: object, b: object) -> None:
    """``a`` or ``b`` must be set, not both; ``names`` says which fields they are."""
    if (a is None) == (b is None):
        raise LocalProtocolError(code, f"{frame} needs exactly one of {names}")


# --- Requests: client to server -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    TYPE: ClassVar[str] = "login"
    username: str
    password: str
    req: Req | None = None

    def __repr__(self) -> str:
        # Keeps the password out of logs and tracebacks.
        return f"Login(username={self.username!r}, password='***', req={self.req!r})"

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "username": self.username,
                "password": self.password,
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """A message to a room or, as a direct message, to one user."""

    TYPE: ClassVar[str] = "send"
    text: str
    room: str | None = None
    to: str | None = None
    req: Req | None = None

    def __post_init__(self) -> None:
        _require_one_of("send", ErrorCode.BAD_REQUEST, "'room' or 'to'", self.room, self.to)

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "room": self.room,
                "to": self.to,
                "text": self.text,
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Join:
    TYPE: ClassVar[str] = "join"
    room: str
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "room": self.room, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class Leave:
    TYPE: ClassVar[str] = "leave"
    room: str
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "room": self.room, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class ListRooms:
    """An addition: ``after`` (a room name) and ``limit`` page through the rooms by name."""

    TYPE: ClassVar[str] = "rooms"
    after: str | None = None
    limit: int | None = None
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {"type": self.TYPE, "after": self.after, "limit": self.limit, "req": self.req}
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Who:
    TYPE: ClassVar[str] = "who"
    room: str
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "room": self.room, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    """A page of a room's (``room``) or a direct conversation's (``with_``) messages."""

    TYPE: ClassVar[str] = "history"
    room: str | None = None
    with_: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = DEFAULT_HISTORY_LIMIT
    req: Req | None = None

    def __post_init__(self) -> None:
        _require_one_of("history", ErrorCode.BAD_REQUEST, "'room' or 'with'", self.room, self.with_)
        if self.before is not None and self.after is not None:
            raise LocalProtocolError(
                ErrorCode.BAD_REQUEST, "history takes at most one of 'before' or 'after'"
            )

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "room": self.room,
                "with": self.with_,
                "before": self.before,
                "after": self.after,
                "limit": self.limit,
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Passwd:
    TYPE: ClassVar[str] = "passwd"
    old: str
    new: str
    req: Req | None = None

    def __repr__(self) -> str:
        return f"Passwd(old='***', new='***', req={self.req!r})"

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "old": self.old, "new": self.new, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientPing:
    """The client asks whether the server is alive; answered by ``ServerPong``."""

    TYPE: ClassVar[str] = "ping"
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientPong:
    """The client's answer to a ``ServerPing`` (an addition to the contract)."""

    TYPE: ClassVar[str] = "pong"
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout:
    TYPE: ClassVar[str] = "logout"
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "req": self.req})


# --- Requests of the Additions: rooms2, edit, read -----------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Create:
    """A new room, the sender its owner (``rooms2``)."""

    TYPE: ClassVar[str] = "create"
    room: str
    private: bool = False
    topic: str = ""
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "room": self.room,
                "private": self.private,
                "topic": self.topic,
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    TYPE: ClassVar[str] = "invite"
    room: str
    user: str
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "room": self.room, "user": self.user, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTopic:
    """A room's new topic (empty clears it); the server tells members by ``TopicChanged``."""

    TYPE: ClassVar[str] = "topic"
    room: str
    topic: str
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {"type": self.TYPE, "room": self.room, "topic": self.topic, "req": self.req}
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRole:
    TYPE: ClassVar[str] = "role"
    room: str
    user: str
    role: Role
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "room": self.room,
                "user": self.user,
                "role": self.role,
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Kick:
    """A ``kick`` or, with ``ban``, a ``ban``: the two frames differ only in their type."""

    TYPE: ClassVar[str] = "kick"
    BAN_TYPE: ClassVar[str] = "ban"
    room: str
    user: str
    reason: str = ""
    ban: bool = False
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.BAN_TYPE if self.ban else self.TYPE,
                "room": self.room,
                "user": self.user,
                "reason": self.reason,
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Unban:
    TYPE: ClassVar[str] = "unban"
    room: str
    user: str
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "room": self.room, "user": self.user, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class Edit:
    TYPE: ClassVar[str] = "edit"
    id: int
    text: str
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "id": self.id, "text": self.text, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete:
    TYPE: ClassVar[str] = "delete"
    id: int
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "id": self.id, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkRead:
    """The sender has read a room (``room``) or a direct chat (``with_``) up to an id."""

    TYPE: ClassVar[str] = "read"
    up_to: int
    room: str | None = None
    with_: str | None = None
    req: Req | None = None

    def __post_init__(self) -> None:
        _require_one_of("read", ErrorCode.BAD_REQUEST, "'room' or 'with'", self.room, self.with_)

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "room": self.room,
                "with": self.with_,
                "up_to": self.up_to,
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Search:
    """Words and "quoted phrases" to find in one conversation, or (neither set) in all."""

    TYPE: ClassVar[str] = "search"
    q: str
    room: str | None = None
    with_: str | None = None
    before: int | None = None
    limit: int = DEFAULT_SEARCH_LIMIT
    req: Req | None = None

    def __post_init__(self) -> None:
        if self.room is not None and self.with_ is not None:
            raise LocalProtocolError(ErrorCode.BAD_REQUEST, "search takes 'room' or 'with'")

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "q": self.q,
                "room": self.room,
                "with": self.with_,
                "before": self.before,
                "limit": self.limit,
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileOffer:
    """A file the sender wants to share in a ``room`` or ``to`` one user, announced in full
    (size and SHA-256) so limits are checked before any byte is sent."""

    TYPE: ClassVar[str] = "file_offer"
    name: str
    size: int
    sha256: str
    room: str | None = None
    to: str | None = None
    req: Req | None = None

    def __post_init__(self) -> None:
        _require_one_of("file_offer", ErrorCode.BAD_REQUEST, "'room' or 'to'", self.room, self.to)

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "room": self.room,
                "to": self.to,
                "name": self.name,
                "size": self.size,
                "sha256": self.sha256,
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileChunk:
    """The bytes of an upload from ``offset`` on (base64 on the wire)."""

    TYPE: ClassVar[str] = "file_chunk"
    upload: str
    offset: int
    data: bytes
    req: Req | None = None

    def __repr__(self) -> str:
        return f"FileChunk(upload='***', offset={self.offset}, data=<{len(self.data)} bytes>)"

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "upload": self.upload,
                "offset": self.offset,
                "data": _base64(self.data),
                "req": self.req,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileGet:
    TYPE: ClassVar[str] = "file_get"
    file: str
    offset: int = 0
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {"type": self.TYPE, "file": self.file, "offset": self.offset, "req": self.req}
        )


Request = (
    Login
    | Send
    | Join
    | Leave
    | ListRooms
    | Who
    | History
    | Passwd
    | ClientPing
    | ClientPong
    | Logout
    | Create
    | Invite
    | SetTopic
    | SetRole
    | Kick
    | Unban
    | Edit
    | Delete
    | MarkRead
    | Search
    | FileOffer
    | FileChunk
    | FileGet
)
REQUEST_TYPES: tuple[type[Request], ...] = (
    Login,
    Send,
    Join,
    Leave,
    ListRooms,
    Who,
    History,
    Passwd,
    ClientPing,
    ClientPong,
    Logout,
    Create,
    Invite,
    SetTopic,
    SetRole,
    Kick,
    Unban,
    Edit,
    Delete,
    MarkRead,
    Search,
    FileOffer,
    FileChunk,
    FileGet,
)
# Every request's wire type: a Kick is also sent as a ``ban``.
REQUEST_WIRE_TYPES: frozenset[str] = frozenset(kind.TYPE for kind in REQUEST_TYPES) | {
    Kick.BAN_TYPE
}


# --- Frames the server sends -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    TYPE: ClassVar[str] = "hello"
    max_frame_bytes: int
    server: str = "chatsecure"
    version: int = 1
    server_version: str | None = None  # an addition: the software's release, e.g. "0.1.0"
    features: tuple[str, ...] = ()  # an addition: the Additions sections served

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "type": self.TYPE,
            "server": self.server,
            "version": self.version,
            "max_frame_bytes": self.max_frame_bytes,
        }
        if self.server_version is not None:
            wire["server_version"] = self.server_version
        if self.features:
            wire["features"] = list(self.features)
        return wire


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome:
    TYPE: ClassVar[str] = "welcome"
    user: str
    rooms: tuple[str, ...]
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {"type": self.TYPE, "req": self.req, "user": self.user, "rooms": self.rooms}
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ok:
    """Success; ``id`` and ``ts`` are set for a ``send`` (and a file's last chunk),
    ``edited_ts`` for an ``edit``, ``received`` for a ``file_chunk``."""

    TYPE: ClassVar[str] = "ok"
    req: Req | None = None
    id: int | None = None
    ts: str | None = None
    edited_ts: str | None = None
    received: int | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "req": self.req,
                "id": self.id,
                "ts": self.ts,
                "edited_ts": self.edited_ts,
                "received": self.received,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    """``code`` is an ``ErrorCode`` when we send; a client keeps codes it does not know."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    req: Req | None = None
    retry_after: int | None = None
    received: int | None = None  # with `bad_upload`: where the upload may resume

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "req": self.req,
                "code": self.code,
                "message": self.message,
                "retry_after": self.retry_after,
                "received": self.received,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Joined:
    """In the room; ``topic``, ``private`` and the joiner's ``role`` are additions."""

    TYPE: ClassVar[str] = "joined"
    room: str
    req: Req | None = None
    topic: str | None = None
    private: bool | None = None
    role: Role | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "req": self.req,
                "room": self.room,
                "topic": self.topic,
                "private": self.private,
                "role": self.role,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomInfo:
    """One entry of a ``RoomsReply``."""

    name: str
    members: int
    joined: bool
    topic: str | None = None
    private: bool | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "name": self.name,
                "members": self.members,
                "joined": self.joined,
                "topic": self.topic,
                "private": self.private,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomsReply:
    TYPE: ClassVar[str] = "rooms"
    rooms: tuple[RoomInfo, ...]
    more: bool | None = None  # an addition: rooms follow past this page
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "req": self.req,
                "rooms": [room.to_wire() for room in self.rooms],
                "more": self.more,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberInfo:
    """One entry of a ``WhoReply``."""

    user: str
    online: bool
    role: Role | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"user": self.user, "online": self.online, "role": self.role})


@dataclass(frozen=True, slots=True, kw_only=True)
class WhoReply:
    TYPE: ClassVar[str] = "who"
    room: str
    members: tuple[MemberInfo, ...]
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "req": self.req,
                "room": self.room,
                "members": [member.to_wire() for member in self.members],
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileInfo:
    """The file a message shares (an addition): fetched by ``id`` with ``file_get``."""

    id: str
    name: str
    size: int
    sha256: str
    mime: str

    def to_wire(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "mime": self.mime,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A stored message: in a ``room``, or a direct message ``to`` one user.

    A deleted one (``deleted``, an addition) has no ``text``; an edited one carries the
    time of its latest edit (``edited_ts``).
    """

    TYPE: ClassVar[str] = "message"
    id: int
    ts: str
    from_: str
    text: str | None
    room: str | None = None
    to: str | None = None
    edited_ts: str | None = None
    deleted: bool = False
    file: FileInfo | None = None

    def __post_init__(self) -> None:
        _require_one_of("message", ErrorCode.SERVER_ERROR, "'room' or 'to'", self.room, self.to)
        if (self.text is None) != self.deleted:
            raise LocalProtocolError(
                ErrorCode.SERVER_ERROR, "a message has a text unless it is deleted"
            )

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "id": self.id,
                "ts": self.ts,
                "from": self.from_,
                "room": self.room,
                "to": self.to,
                "text": self.text,
                "edited_ts": self.edited_ts,
                "deleted": True if self.deleted else None,
                "file": None if self.file is None else self.file.to_wire(),
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryReply:
    """A page of messages, oldest first; ``more`` says whether the asked direction goes on."""

    TYPE: ClassVar[str] = "history"
    messages: tuple[Message, ...]
    more: bool
    room: str | None = None
    with_: str | None = None
    req: Req | None = None
    read_up_to: int | None = None  # an addition, on the pages a login sends

    def __post_init__(self) -> None:
        _require_one_of(
            "history", ErrorCode.SERVER_ERROR, "'room' or 'with'", self.room, self.with_
        )

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "req": self.req,
                "room": self.room,
                "with": self.with_,
                "messages": [message.to_wire() for message in self.messages],
                "more": self.more,
                "read_up_to": self.read_up_to,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResults:
    """Matching messages, newest first; ``more`` says older matches follow."""

    TYPE: ClassVar[str] = "search"
    results: tuple[Message, ...]
    more: bool
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "req": self.req,
                "results": [message.to_wire() for message in self.results],
                "more": self.more,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSlot:
    """An accepted offer: send chunks of at most ``chunk_bytes`` under ``upload``."""

    TYPE: ClassVar[str] = "file_slot"
    upload: str
    chunk_bytes: int
    req: Req | None = None

    def __repr__(self) -> str:
        return f"FileSlot(upload='***', chunk_bytes={self.chunk_bytes}, req={self.req!r})"

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "req": self.req,
                "upload": self.upload,
                "chunk_bytes": self.chunk_bytes,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileData:
    """A piece of a fetched file from ``offset`` on; ``last`` on the final one."""

    TYPE: ClassVar[str] = "file_data"
    file: str
    offset: int
    data: bytes
    last: bool
    req: Req | None = None

    def __repr__(self) -> str:
        return f"FileData(file={self.file!r}, offset={self.offset}, data=<{len(self.data)} bytes>)"

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "req": self.req,
                "file": self.file,
                "offset": self.offset,
                "data": _base64(self.data),
                "last": self.last,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerPong:
    """The server's answer to a ``ClientPing``."""

    TYPE: ClassVar[str] = "pong"
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerPing:
    """The server checks on a quiet connection (an addition); clients answer ``ClientPong``."""

    TYPE: ClassVar[str] = "ping"
    req: Req | None = None

    def to_wire(self) -> dict[str, object]:
        return _compact({"type": self.TYPE, "req": self.req})


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye:
    """The last frame before the server closes; ``reason`` is a ``ByeReason`` when we send."""

    TYPE: ClassVar[str] = "bye"
    reason: str

    def to_wire(self) -> dict[str, object]:
        return {"type": self.TYPE, "reason": self.reason}


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """Someone joined or left a room the recipient is in."""

    TYPE: ClassVar[str] = "member"
    room: str
    user: str
    event: MemberEvent

    def to_wire(self) -> dict[str, object]:
        return {"type": self.TYPE, "room": self.room, "user": self.user, "event": self.event}


@dataclass(frozen=True, slots=True, kw_only=True)
class Presence:
    """A user who shares a room with the recipient came online or went offline."""

    TYPE: ClassVar[str] = "presence"
    user: str
    status: PresenceStatus

    def to_wire(self) -> dict[str, object]:
        return {"type": self.TYPE, "user": self.user, "status": self.status}


# --- Frames of the Additions: rooms2, edit, read -------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Invited:
    TYPE: ClassVar[str] = "invited"
    room: str
    by: str
    topic: str = ""

    def to_wire(self) -> dict[str, object]:
        return {"type": self.TYPE, "room": self.room, "by": self.by, "topic": self.topic}


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicChanged:
    TYPE: ClassVar[str] = "topic"
    room: str
    topic: str
    by: str

    def to_wire(self) -> dict[str, object]:
        return {"type": self.TYPE, "room": self.room, "topic": self.topic, "by": self.by}


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleChanged:
    TYPE: ClassVar[str] = "role"
    room: str
    user: str
    role: Role
    by: str

    def to_wire(self) -> dict[str, object]:
        return {
            "type": self.TYPE,
            "room": self.room,
            "user": self.user,
            "role": self.role,
            "by": self.by,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Kicked:
    """To the one removed from a room: kicked, or banned (``ban``)."""

    TYPE: ClassVar[str] = "kicked"
    room: str
    by: str
    reason: str = ""
    ban: bool = False

    def to_wire(self) -> dict[str, object]:
        return {
            "type": self.TYPE,
            "room": self.room,
            "by": self.by,
            "reason": self.reason,
            "ban": self.ban,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Edited:
    TYPE: ClassVar[str] = "edited"
    id: int
    text: str
    edited_ts: str
    by: str
    room: str | None = None
    to: str | None = None

    def __post_init__(self) -> None:
        _require_one_of("edited", ErrorCode.SERVER_ERROR, "'room' or 'to'", self.room, self.to)

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {
                "type": self.TYPE,
                "id": self.id,
                "room": self.room,
                "to": self.to,
                "text": self.text,
                "edited_ts": self.edited_ts,
                "by": self.by,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Deleted:
    TYPE: ClassVar[str] = "deleted"
    id: int
    by: str
    room: str | None = None
    to: str | None = None

    def __post_init__(self) -> None:
        _require_one_of("deleted", ErrorCode.SERVER_ERROR, "'room' or 'to'", self.room, self.to)

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {"type": self.TYPE, "id": self.id, "room": self.room, "to": self.to, "by": self.by}
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadMarker:
    """Another device of the same user read a conversation up to ``up_to``."""

    TYPE: ClassVar[str] = "read"
    up_to: int
    room: str | None = None
    with_: str | None = None

    def __post_init__(self) -> None:
        _require_one_of("read", ErrorCode.SERVER_ERROR, "'room' or 'with'", self.room, self.with_)

    def to_wire(self) -> dict[str, object]:
        return _compact(
            {"type": self.TYPE, "room": self.room, "with": self.with_, "up_to": self.up_to}
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownFrame:
    """A server frame of a type this client does not know; kept so newer servers still work."""

    type: str
    data: Mapping[str, object]


ServerFrame = (
    Hello
    | Welcome
    | Ok
    | Error
    | Joined
    | RoomsReply
    | WhoReply
    | HistoryReply
    | ServerPong
    | ServerPing
    | Bye
    | Message
    | Member
    | Presence
    | Invited
    | TopicChanged
    | RoleChanged
    | Kicked
    | Edited
    | Deleted
    | ReadMarker
    | SearchResults
    | FileSlot
    | FileData
)
SERVER_FRAME_TYPES: tuple[type[ServerFrame], ...] = (
    Hello,
    Welcome,
    Ok,
    Error,
    Joined,
    RoomsReply,
    WhoReply,
    HistoryReply,
    ServerPong,
    ServerPing,
    Bye,
    Message,
    Member,
    Presence,
    Invited,
    TopicChanged,
    RoleChanged,
    Kicked,
    Edited,
    Deleted,
    ReadMarker,
    SearchResults,
    FileSlot,
    FileData,
)
