"""Frames to bytes and bytes to frames: all validation of what the peer sent happens here.

The server side is strict (``read_envelope`` + ``parse_fields``, or ``parse_request``
for both at once): a frame either becomes a typed request or a ``RemoteProtocolError``
whose code and message are what the ``error`` reply should say. The client side
(``parse_server_frame``) is lenient, as the contract lets servers add frames and fields.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

from chatsecure import names
from chatsecure.protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from chatsecure.protocol.events import (
    DEFAULT_HISTORY_LIMIT,
    DEFAULT_SEARCH_LIMIT,
    MAX_HISTORY_LIMIT,
    MAX_ROOMS_LIMIT,
    MAX_SEARCH_LIMIT,
    MEMBER_EVENTS,
    PRESENCE_STATUSES,
    ROLES,
    Bye,
    ClientPing,
    ClientPong,
    Create,
    Delete,
    Deleted,
    Edit,
    Edited,
    Error,
    FileChunk,
    FileData,
    FileGet,
    FileInfo,
    FileOffer,
    FileSlot,
    Hello,
    History,
    HistoryReply,
    Invite,
    Invited,
    Join,
    Joined,
    Kick,
    Kicked,
    Leave,
    ListRooms,
    Login,
    Logout,
    MarkRead,
    Member,
    MemberInfo,
    Message,
    Ok,
    Passwd,
    Presence,
    ReadMarker,
    Req,
    Request,
    RoleChanged,
    RoomInfo,
    RoomsReply,
    Search,
    SearchResults,
    Send,
    ServerFrame,
    ServerPing,
    ServerPong,
    SetRole,
    SetTopic,
    TopicChanged,
    Unban,
    UnknownFrame,
    Welcome,
    Who,
    WhoReply,
)

MAX_REQ_CHARS = 64
MAX_LOGIN_USERNAME_CHARS = 64
MAX_PASSWORD_CHARS = 1024
MAX_FILE_NAME_CHARS = 255
MAX_TOKEN_CHARS = 64  # an upload token or a file id
MAX_FILE_SIZE = 2**53  # beyond what any `[files] max_bytes` allows, and exact in JSON
_SHA256 = re.compile("[0-9a-fA-F]{64}")

# Every integer field of a request is a signed 64-bit integer, as SQL databases store
# them: a larger message id could only fail deep inside the server. (``req`` is not a
# number to us but a label to echo, and has its own rule below.)
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
# The integers whose decimal form, sign included, has at most MAX_REQ_CHARS characters.
_REQ_INT_LOW = -(10 ** (MAX_REQ_CHARS - 1))
_REQ_INT_HIGH = 10**MAX_REQ_CHARS
# JSON escapes can smuggle in lone surrogates, which cannot be encoded back to UTF-8:
# accepting one would make every frame that echoes it fail to encode.
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_PROBLEM_CODES = {
    names.TextProblem.CONTROL_CHARACTER: ErrorCode.BAD_REQUEST,
    names.TextProblem.EMPTY: ErrorCode.EMPTY_TEXT,
    names.TextProblem.TOO_LONG: ErrorCode.TEXT_TOO_LONG,
}
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)


def _one_shot_encoder(encoder: json.JSONEncoder) -> Callable[[object], str]:
    """``encoder.encode``, with json's C encoder made once instead of once per call.

    ``JSONEncoder.encode`` builds a C encoder on every call, a third of the cost of a
    small frame. The C encoder is not public API: where it is missing or its signature
    differs, ``encoder.encode`` is used as it is.
    """
    make: Callable[..., Any] | None = getattr(json.encoder, "c_make_encoder", None)
    # typeshed types indent as never None; it is None unless asked for.
    indented = getattr(encoder, "indent", None) is not None
    if make is None or indented or encoder.check_circular:
        return encoder.encode
    try:
        c_encode = make(
            None,
            encoder.default,
            json.encoder.encode_basestring_ascii
            if encoder.ensure_ascii
            else json.encoder.encode_basestring,
            None,
            encoder.key_separator,
            encoder.item_separator,
            encoder.sort_keys,
            encoder.skipkeys,
            encoder.allow_nan,
        )
    except TypeError:
        return encoder.encode
    return lambda value: "".join(c_encode(value, 0))


_encode_json = _one_shot_encoder(_ENCODER)

_Choice = TypeVar("_Choice", bound=str)


def _has_surrogate(value: str) -> bool:
    # isascii() is a flag lookup, so the usual ASCII field costs no regex search.
    return not value.isascii() and _SURROGATE.search(value) is not None


class WireFrame(Protocol):
    """Anything ``encode`` can put on the wire: every request and server frame."""

    def to_wire(self) -> dict[str, object]: ...


def encode(frame: WireFrame) -> bytes:
    """The frame as one compact JSON line; encode a broadcast once and share the bytes."""
    try:
        return _encode_json(frame.to_wire()).encode() + b"\n"
    except (UnicodeEncodeError, ValueError) as error:
        raise LocalProtocolError(
            ErrorCode.SERVER_ERROR, f"cannot encode {type(frame).__name__}: {error}"
        ) from error


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every frame: json.loads with an argument builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode_object(line: bytes) -> dict[str, object]:
    """The line as a JSON object, or ``bad_frame``; hostile JSON is refused, not crashed on."""
    try:
        # Decoding ourselves: json.loads would guess UTF-16 or UTF-32 from bytes.
        data = _DECODER.decode(line.decode())
    except UnicodeDecodeError:
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "frame is not UTF-8") from None
    # ValueError covers malformed JSON, NaN/Infinity and integers too long to convert;
    # RecursionError covers arrays or objects nested too deep.
    except (ValueError, RecursionError):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "frame is not a JSON object")
    return data


def _quoted(value: str) -> str:
    """A peer's string made safe to echo in an error message: ASCII and short."""
    return ascii(value[:40] + ("..." if len(value) > 40 else ""))


class _Fields:
    """Typed access to a frame's fields; every failure names the field and echoes ``req``.

    ``null`` counts as absent, so an optional field may be sent as ``null``.
    """

    __slots__ = ("_code", "_data", "req")

    def __init__(self, data: Mapping[str, object], code: ErrorCode, req: Req | None) -> None:
        self._data = data
        self._code = code
        self.req = req

    def error(self, message: str, code: ErrorCode | None = None) -> RemoteProtocolError:
        return RemoteProtocolError(code or self._code, message, self.req)

    def has(self, name: str) -> bool:
        return self._data.get(name) is not None

    def optional_string(self, name: str, max_chars: int | None = None) -> str | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"field {name!r} must be a string")
        if max_chars is not None and len(value) > max_chars:
            raise self.error(f"field {name!r} must be at most {max_chars} characters")
        if _has_surrogate(value):
            raise self.error(f"field {name!r} is not valid Unicode")
        return value

    def string(self, name: str, max_chars: int | None = None) -> str:
        value = self.optional_string(name, max_chars)
        if value is None:
            raise self.error(f"field {name!r} is required")
        return value

    def optional_integer(self, name: str, minimum: int | None = None) -> int | None:
        value = self._data.get(name)
        if value is None:
            return None
        # bool is a subclass of int, but true is not a number on the wire.
        if type(value) is not int:
            raise self.error(f"field {name!r} must be an integer")
        if minimum is not None and value < minimum:
            raise self.error(f"field {name!r} must be at least {minimum}")
        return value

    def integer(self, name: str) -> int:
        value = self.optional_integer(name)
        if value is None:
            raise self.error(f"field {name!r} is required")
        return value

    def optional_boolean(self, name: str) -> bool | None:
        return None if self._data.get(name) is None else self.boolean(name)

    def boolean(self, name: str) -> bool:
        value = self._data.get(name)
        if not isinstance(value, bool):
            raise self.error(f"field {name!r} must be true or false")
        return value

    def choice(self, name: str, allowed: tuple[_Choice, ...]) -> _Choice:
        value = self._data.get(name)
        for option in allowed:
            if value == option:
                return option
        raise self.error(f"field {name!r} must be one of {', '.join(allowed)}")

    def strings(self, name: str) -> tuple[str, ...]:
        items = self._data.get(name)
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise self.error(f"field {name!r} must be a list of strings")
        return tuple(items)

    def object(self, name: str) -> _Fields:
        value = self._data.get(name)
        if not isinstance(value, dict):
            raise self.error(f"field {name!r} must be an object")
        return type(self)(value, self._code, self.req)

    def objects(self, name: str) -> list[_Fields]:
        items = self._data.get(name)
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise self.error(f"field {name!r} must be a list of objects")
        return [type(self)(item, self._code, self.req) for item in items]

    def line(self, name: str) -> str:
        """A topic or a reason: one line of at most ``TOPIC_MAX_CHARS``; absent is empty."""
        value = self.optional_string(name, names.TOPIC_MAX_CHARS) or ""
        if names.has_control_character(value):
            raise self.error(f"field {name!r} must be one line without control characters")
        return value

    def data(self, name: str = "data") -> bytes:
        """Bytes sent as strict base64 (no whitespace or stray characters)."""
        value = self.string(name)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise self.error(f"field {name!r} must be base64") from None

    def token(self, name: str) -> str:
        """An opaque id the server handed out (upload token, file id)."""
        value = self.string(name, MAX_TOKEN_CHARS)
        if not value:
            raise self.error(f"field {name!r} must not be empty")
        return value

    def optional_room(self, name: str = "room") -> str | None:
        value = self.optional_string(name)
        if value is None:
            return None
        room = names.normalize_room(value)
        if room is None:
            raise self.error(f"field {name!r} is not a valid room name")
        return room

    def room(self) -> str:
        room = self.optional_room()
        if room is None:
            raise self.error("field 'room' is required")
        return room

    def optional_username(self, name: str) -> str | None:
        value = self.optional_string(name)
        if value is not None and not names.is_valid_username(value):
            raise self.error(f"field {name!r} is not a valid username")
        return value


# --- Server side: requests -------------------------------------------------------------


class Envelope(NamedTuple):
    """A frame's ``type`` and ``req``, read before its other fields are validated.

    The server checks the type against the connection state between the two steps,
    so a ``send`` before login is ``not_authenticated`` whatever its fields say.
    """

    type: str
    req: Req | None
    fields: Mapping[str, object]


class _RequestFields(_Fields):
    """A client request's fields: strict, so every integer must also be 64-bit."""

    __slots__ = ()

    def optional_integer(self, name: str, minimum: int | None = None) -> int | None:
        value = super().optional_integer(name, minimum)
        if value is not None and not MIN_INTEGER <= value <= MAX_INTEGER:
            raise self.error(f"field {name!r} must be a 64-bit integer (at most {MAX_INTEGER})")
        return value


def _read_req(data: Mapping[str, object]) -> Req | None:
    value = data.get("req")
    if value is None:
        return None
    if type(value) is int and _REQ_INT_LOW < value < _REQ_INT_HIGH:
        return value
    if isinstance(value, str) and len(value) <= MAX_REQ_CHARS and not _has_surrogate(value):
        return value
    raise RemoteProtocolError(
        ErrorCode.BAD_REQUEST,
        f"field 'req' must be a string or integer of at most {MAX_REQ_CHARS} characters",
    )


def read_envelope(line: bytes) -> Envelope:
    """The frame's type and req; raises for ``bad_frame``, a bad ``req`` or ``type``."""
    data = _decode_object(line)
    req = _read_req(data)
    kind = _Fields(data, ErrorCode.BAD_REQUEST, req).string("type")
    if kind not in _REQUEST_PARSERS:
        raise RemoteProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown type {_quoted(kind)}", req)
    return Envelope(kind, req, data)


def parse_fields(envelope: Envelope, max_text_chars: int) -> Request:
    """The typed request, once every field has been checked against the contract.

    Rules across fields (``send`` to a room or a user, not both) are the events' own;
    here the peer broke them, so they are the peer's error.
    """
    fields = _RequestFields(envelope.fields, ErrorCode.BAD_REQUEST, envelope.req)
    try:
        return _REQUEST_PARSERS[envelope.type](fields, max_text_chars)
    except LocalProtocolError as broken:
        raise fields.error(broken.message) from None


def parse_request(line: bytes, max_text_chars: int) -> Request:
    """One client frame (without its newline) as a typed request, or ``RemoteProtocolError``."""
    return parse_fields(read_envelope(line), max_text_chars)


def _parse_login(fields: _Fields, _max_text_chars: int) -> Login:
    # Any name is passed on, not just valid ones: the server must answer a malformed
    # name exactly as an unknown user, or the reply would tell the two apart.
    username = fields.string("username", MAX_LOGIN_USERNAME_CHARS)
    if not username:
        raise fields.error("field 'username' must not be empty")
    password = fields.string("password", MAX_PASSWORD_CHARS)
    return Login(username=username, password=password, req=fields.req)


def _parse_send(fields: _Fields, max_text_chars: int) -> Send:
    room = fields.optional_room()
    to = fields.optional_username("to")
    return Send(text=_message_text(fields, max_text_chars), room=room, to=to, req=fields.req)


def _parse_join(fields: _Fields, _max_text_chars: int) -> Join:
    return Join(room=fields.room(), req=fields.req)


def _parse_leave(fields: _Fields, _max_text_chars: int) -> Leave:
    return Leave(room=fields.room(), req=fields.req)


def _parse_rooms(fields: _Fields, _max_text_chars: int) -> ListRooms:
    after = fields.optional_room("after")
    limit = fields.optional_integer("limit", minimum=1)
    if limit is not None and limit > MAX_ROOMS_LIMIT:
        raise fields.error(f"field 'limit' must be at most {MAX_ROOMS_LIMIT}")
    return ListRooms(after=after, limit=limit, req=fields.req)


def _parse_who(fields: _Fields, _max_text_chars: int) -> Who:
    return Who(room=fields.room(), req=fields.req)


def _parse_history(fields: _Fields, _max_text_chars: int) -> History:
    room = fields.optional_room()
    with_ = fields.optional_username("with")
    before = fields.optional_integer("before", minimum=1)
    # after: 0 reads a conversation from its very first message (ids start at 1).
    after = fields.optional_integer("after", minimum=0)
    limit = fields.optional_integer("limit", minimum=1)
    if limit is None:
        limit = DEFAULT_HISTORY_LIMIT
    elif limit > MAX_HISTORY_LIMIT:
        raise fields.error(f"field 'limit' must be at most {MAX_HISTORY_LIMIT}")
    return History(room=room, with_=with_, before=before, after=after, limit=limit, req=fields.req)


def _parse_passwd(fields: _Fields, _max_text_chars: int) -> Passwd:
    old = fields.string("old", MAX_PASSWORD_CHARS)
    new = fields.string("new", MAX_PASSWORD_CHARS)
    return Passwd(old=old, new=new, req=fields.req)


def _parse_ping(fields: _Fields, _max_text_chars: int) -> ClientPing:
    return ClientPing(req=fields.req)


def _parse_pong(fields: _Fields, _max_text_chars: int) -> ClientPong:
    return ClientPong(req=fields.req)


def _parse_logout(fields: _Fields, _max_text_chars: int) -> Logout:
    return Logout(req=fields.req)


def _username(fields: _Fields, name: str = "user") -> str:
    user = fields.optional_username(name)
    if user is None:
        raise fields.error(f"field {name!r} is required")
    return user


def _message_text(fields: _Fields, max_text_chars: int) -> str:
    text = fields.string("text")
    problem = names.text_problem(text, max_text_chars)
    if problem is not None:
        raise fields.error(problem.value, _TEXT_PROBLEM_CODES[problem])
    return text


def _parse_create(fields: _Fields, _max_text_chars: int) -> Create:
    private = fields.optional_boolean("private") or False
    return Create(room=fields.room(), private=private, topic=fields.line("topic"), req=fields.req)


def _parse_invite(fields: _Fields, _max_text_chars: int) -> Invite:
    return Invite(room=fields.room(), user=_username(fields), req=fields.req)


def _parse_topic(fields: _Fields, _max_text_chars: int) -> SetTopic:
    if fields.optional_string("topic") is None:
        raise fields.error("field 'topic' is required")
    return SetTopic(room=fields.room(), topic=fields.line("topic"), req=fields.req)


def _parse_role(fields: _Fields, _max_text_chars: int) -> SetRole:
    role = fields.choice("role", ROLES)
    return SetRole(room=fields.room(), user=_username(fields), role=role, req=fields.req)


def _removal_parser(ban: bool) -> Callable[[_Fields, int], Kick]:
    def parse(fields: _Fields, _max_text_chars: int) -> Kick:
        room, user, reason = fields.room(), _username(fields), fields.line("reason")
        return Kick(room=room, user=user, reason=reason, ban=ban, req=fields.req)

    return parse


def _parse_unban(fields: _Fields, _max_text_chars: int) -> Unban:
    return Unban(room=fields.room(), user=_username(fields), req=fields.req)


def _message_id(fields: _Fields) -> int:
    message_id = fields.optional_integer("id", minimum=1)
    if message_id is None:
        raise fields.error("field 'id' is required")
    return message_id


def _parse_edit(fields: _Fields, max_text_chars: int) -> Edit:
    message_id = _message_id(fields)
    return Edit(id=message_id, text=_message_text(fields, max_text_chars), req=fields.req)


def _parse_delete(fields: _Fields, _max_text_chars: int) -> Delete:
    return Delete(id=_message_id(fields), req=fields.req)


def _parse_read(fields: _Fields, _max_text_chars: int) -> MarkRead:
    up_to = fields.optional_integer("up_to", minimum=1)
    if up_to is None:
        raise fields.error("field 'up_to' is required")
    room, with_ = fields.optional_room(), fields.optional_username("with")
    return MarkRead(up_to=up_to, room=room, with_=with_, req=fields.req)


def _parse_search(fields: _Fields, _max_text_chars: int) -> Search:
    q = fields.string("q", names.SEARCH_MAX_CHARS).strip()
    if not q:
        raise fields.error("field 'q' must have something to search for")
    if names.has_control_character(q):
        raise fields.error("field 'q' must be one line without control characters")
    room, with_ = fields.optional_room(), fields.optional_username("with")
    before = fields.optional_integer("before", minimum=1)
    limit = fields.optional_integer("limit", minimum=1)
    if limit is None:
        limit = DEFAULT_SEARCH_LIMIT
    elif limit > MAX_SEARCH_LIMIT:
        raise fields.error(f"field 'limit' must be at most {MAX_SEARCH_LIMIT}")
    return Search(q=q, room=room, with_=with_, before=before, limit=limit, req=fields.req)


def _file_name(fields: _Fields) -> str:
    """A name to show, never a path: one component without separators or controls."""
    name = fields.string("name", MAX_FILE_NAME_CHARS)
    if not name.strip() or name in (".", ".."):
        raise fields.error("field 'name' must be a file name")
    if "/" in name or "\\" in name or names.has_control_character(name):
        raise fields.error("field 'name' must not hold path separators or control characters")
    return name


def _parse_file_offer(fields: _Fields, _max_text_chars: int) -> FileOffer:
    room, to = fields.optional_room(), fields.optional_username("to")
    size = fields.optional_integer("size", minimum=1)
    if size is None:
        raise fields.error("field 'size' is required (a file of at least one byte)")
    if size > MAX_FILE_SIZE:
        raise fields.error(f"field 'size' must be at most {MAX_FILE_SIZE}")
    sha256 = fields.string("sha256", 64)
    if not _SHA256.fullmatch(sha256):
        raise fields.error("field 'sha256' must be 64 hexadecimal digits")
    return FileOffer(
        name=_file_name(fields),
        size=size,
        sha256=sha256.lower(),
        room=room,
        to=to,
        req=fields.req,
    )


def _offset(fields: _Fields) -> int:
    return fields.optional_integer("offset", minimum=0) or 0


def _parse_file_chunk(fields: _Fields, _max_text_chars: int) -> FileChunk:
    if not fields.has("offset"):
        raise fields.error("field 'offset' is required")
    upload, offset = fields.token("upload"), _offset(fields)
    return FileChunk(upload=upload, offset=offset, data=fields.data(), req=fields.req)


def _parse_file_get(fields: _Fields, _max_text_chars: int) -> FileGet:
    return FileGet(file=fields.token("file"), offset=_offset(fields), req=fields.req)


_REQUEST_PARSERS: dict[str, Callable[[_Fields, int], Request]] = {
    Login.TYPE: _parse_login,
    Send.TYPE: _parse_send,
    Join.TYPE: _parse_join,
    Leave.TYPE: _parse_leave,
    ListRooms.TYPE: _parse_rooms,
    Who.TYPE: _parse_who,
    History.TYPE: _parse_history,
    Passwd.TYPE: _parse_passwd,
    ClientPing.TYPE: _parse_ping,
    ClientPong.TYPE: _parse_pong,
    Logout.TYPE: _parse_logout,
    Create.TYPE: _parse_create,
    Invite.TYPE: _parse_invite,
    SetTopic.TYPE: _parse_topic,
    SetRole.TYPE: _parse_role,
    Kick.TYPE: _removal_parser(ban=False),
    Kick.BAN_TYPE: _removal_parser(ban=True),
    Unban.TYPE: _parse_unban,
    Edit.TYPE: _parse_edit,
    Delete.TYPE: _parse_delete,
    MarkRead.TYPE: _parse_read,
    Search.TYPE: _parse_search,
    FileOffer.TYPE: _parse_file_offer,
    FileChunk.TYPE: _parse_file_chunk,
    FileGet.TYPE: _parse_file_get,
}


# --- Client side: server frames --------------------------------------------------------


def parse_server_frame(line: bytes) -> ServerFrame | UnknownFrame:
    """One server frame (without its newline) as a typed event.

    Unknown fields are ignored and an unknown type becomes ``UnknownFrame``; a known
    frame that is malformed raises ``RemoteProtocolError`` (``bad_frame``).
    """
    data = _decode_object(line)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "frame has no string field 'type'")
    parser = _SERVER_FRAME_PARSERS.get(kind)
    if parser is None:
        return UnknownFrame(type=kind, data=data)
    fields = _Fields(data, ErrorCode.BAD_FRAME, _reply_req(data))
    try:
        return parser(fields)
    except LocalProtocolError as broken:  # an event's rule across fields: the server broke it
        raise fields.error(broken.message) from None


def _reply_req(data: Mapping[str, object]) -> Req | None:
    value = data.get("req")
    if value is None or type(value) is int or isinstance(value, str):
        return value
    raise RemoteProtocolError(ErrorCode.BAD_FRAME, "field 'req' must be a string or integer")


def _parse_hello(fields: _Fields) -> Hello:
    return Hello(
        server=fields.string("server"),
        version=fields.integer("version"),
        max_frame_bytes=fields.integer("max_frame_bytes"),
        server_version=fields.optional_string("server_version"),
        features=fields.strings("features") if fields.has("features") else (),
    )


def _parse_welcome(fields: _Fields) -> Welcome:
    return Welcome(user=fields.string("user"), rooms=fields.strings("rooms"), req=fields.req)


def _parse_ok(fields: _Fields) -> Ok:
    return Ok(
        req=fields.req,
        id=fields.optional_integer("id"),
        ts=fields.optional_string("ts"),
        edited_ts=fields.optional_string("edited_ts"),
        received=fields.optional_integer("received"),
    )


def _parse_error(fields: _Fields) -> Error:
    return Error(
        code=fields.string("code"),
        message=fields.string("message"),
        req=fields.req,
        retry_after=fields.optional_integer("retry_after"),
        received=fields.optional_integer("received"),
    )


def _parse_joined(fields: _Fields) -> Joined:
    return Joined(
        room=fields.string("room"),
        req=fields.req,
        topic=fields.optional_string("topic"),
        private=fields.optional_boolean("private"),
        role=fields.choice("role", ROLES) if fields.has("role") else None,
    )


def _parse_rooms_reply(fields: _Fields) -> RoomsReply:
    rooms = tuple(
        RoomInfo(
            name=room.string("name"),
            members=room.integer("members"),
            joined=room.boolean("joined"),
            topic=room.optional_string("topic"),
            private=room.optional_boolean("private"),
        )
        for room in fields.objects("rooms")
    )
    more = fields.optional_boolean("more")
    return RoomsReply(rooms=rooms, more=more, req=fields.req)


def _parse_who_reply(fields: _Fields) -> WhoReply:
    members = tuple(
        MemberInfo(
            user=member.string("user"),
            online=member.boolean("online"),
            role=member.choice("role", ROLES) if member.has("role") else None,
        )
        for member in fields.objects("members")
    )
    return WhoReply(room=fields.string("room"), members=members, req=fields.req)


def _parse_history_reply(fields: _Fields) -> HistoryReply:
    room = fields.optional_string("room")
    with_ = fields.optional_string("with")
    messages = tuple(_parse_message(message) for message in fields.objects("messages"))
    return HistoryReply(
        messages=messages,
        more=fields.boolean("more"),
        room=room,
        with_=with_,
        req=fields.req,
        read_up_to=fields.optional_integer("read_up_to"),
    )


def _parse_message(fields: _Fields) -> Message:
    room = fields.optional_string("room")
    to = fields.optional_string("to")
    deleted = fields.optional_boolean("deleted") or False
    return Message(
        id=fields.integer("id"),
        ts=fields.string("ts"),
        from_=fields.string("from"),
        text=None if deleted else fields.string("text"),
        room=room,
        to=to,
        edited_ts=fields.optional_string("edited_ts"),
        deleted=deleted,
        file=_parse_file_info(fields.object("file")) if fields.has("file") else None,
    )


def _parse_file_info(fields: _Fields) -> FileInfo:
    return FileInfo(
        id=fields.string("id"),
        name=fields.string("name"),
        size=fields.integer("size"),
        sha256=fields.string("sha256"),
        mime=fields.string("mime"),
    )


def _parse_search_results(fields: _Fields) -> SearchResults:
    results = tuple(_parse_message(message) for message in fields.objects("results"))
    return SearchResults(results=results, more=fields.boolean("more"), req=fields.req)


def _parse_file_slot(fields: _Fields) -> FileSlot:
    return FileSlot(
        upload=fields.string("upload"), chunk_bytes=fields.integer("chunk_bytes"), req=fields.req
    )


def _parse_file_data(fields: _Fields) -> FileData:
    return FileData(
        file=fields.string("file"),
        offset=fields.integer("offset"),
        data=fields.data(),
        last=fields.boolean("last"),
        req=fields.req,
    )


def _parse_server_pong(fields: _Fields) -> ServerPong:
    return ServerPong(req=fields.req)


def _parse_server_ping(fields: _Fields) -> ServerPing:
    return ServerPing(req=fields.req)


def _parse_bye(fields: _Fields) -> Bye:
    return Bye(reason=fields.string("reason"))


def _parse_member(fields: _Fields) -> Member:
    return Member(
        room=fields.string("room"),
        user=fields.string("user"),
        event=fields.choice("event", MEMBER_EVENTS),
    )


def _parse_invited(fields: _Fields) -> Invited:
    topic = fields.optional_string("topic") or ""
    return Invited(room=fields.string("room"), by=fields.string("by"), topic=topic)


def _parse_topic_changed(fields: _Fields) -> TopicChanged:
    return TopicChanged(
        room=fields.string("room"), topic=fields.string("topic"), by=fields.string("by")
    )


def _parse_role_changed(fields: _Fields) -> RoleChanged:
    return RoleChanged(
        room=fields.string("room"),
        user=fields.string("user"),
        role=fields.choice("role", ROLES),
        by=fields.string("by"),
    )


def _parse_kicked(fields: _Fields) -> Kicked:
    return Kicked(
        room=fields.string("room"),
        by=fields.string("by"),
        reason=fields.optional_string("reason") or "",
        ban=fields.optional_boolean("ban") or False,
    )


def _parse_edited(fields: _Fields) -> Edited:
    return Edited(
        id=fields.integer("id"),
        text=fields.string("text"),
        edited_ts=fields.string("edited_ts"),
        by=fields.string("by"),
        room=fields.optional_string("room"),
        to=fields.optional_string("to"),
    )


def _parse_deleted(fields: _Fields) -> Deleted:
    return Deleted(
        id=fields.integer("id"),
        by=fields.string("by"),
        room=fields.optional_string("room"),
        to=fields.optional_string("to"),
    )


def _parse_read_marker(fields: _Fields) -> ReadMarker:
    return ReadMarker(
        up_to=fields.integer("up_to"),
        room=fields.optional_string("room"),
        with_=fields.optional_string("with"),
    )


def _parse_presence(fields: _Fields) -> Presence:
    return Presence(user=fields.string("user"), status=fields.choice("status", PRESENCE_STATUSES))


_SERVER_FRAME_PARSERS: dict[str, Callable[[_Fields], ServerFrame]] = {
    Hello.TYPE: _parse_hello,
    Welcome.TYPE: _parse_welcome,
    Ok.TYPE: _parse_ok,
    Error.TYPE: _parse_error,
    Joined.TYPE: _parse_joined,
    RoomsReply.TYPE: _parse_rooms_reply,
    WhoReply.TYPE: _parse_who_reply,
    HistoryReply.TYPE: _parse_history_reply,
    ServerPong.TYPE: _parse_server_pong,
    ServerPing.TYPE: _parse_server_ping,
    Bye.TYPE: _parse_bye,
    Message.TYPE: _parse_message,
    Member.TYPE: _parse_member,
    Presence.TYPE: _parse_presence,
    Invited.TYPE: _parse_invited,
    TopicChanged.TYPE: _parse_topic_changed,
    RoleChanged.TYPE: _parse_role_changed,
    Kicked.TYPE: _parse_kicked,
    Edited.TYPE: _parse_edited,
    Deleted.TYPE: _parse_deleted,
    ReadMarker.TYPE: _parse_read_marker,
    SearchResults.TYPE: _parse_search_results,
    FileSlot.TYPE: _parse_file_slot,
    FileData.TYPE: _parse_file_data,
}
