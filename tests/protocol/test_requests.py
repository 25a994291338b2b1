"""parse_request: every request type, and every way a client frame can be refused."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from chatsecure.protocol import (
    REQUEST_WIRE_TYPES,
    ClientPing,
    ClientPong,
    Create,
    Delete,
    Edit,
    ErrorCode,
    FileChunk,
    FileGet,
    FileOffer,
    History,
    Invite,
    Join,
    Kick,
    Leave,
    ListRooms,
    LocalProtocolError,
    Login,
    Logout,
    MarkRead,
    Passwd,
    RemoteProtocolError,
    Request,
    Search,
    Send,
    SetRole,
    SetTopic,
    Unban,
    Who,
    encode,
    parse_request,
)
from chatsecure.protocol.codec import _REQUEST_PARSERS, read_envelope

MAX_TEXT = 20


def frame(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def refusal(line: bytes) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_request(line, MAX_TEXT)
    return caught.value


VALID: list[tuple[bytes, Request]] = [
    (
        frame(type="login", username="alice", password="pw", req=1),
        Login(username="alice", password="pw", req=1),
    ),
    # Malformed names go on to the core, which answers them like unknown users.
    (
        frame(type="login", username="not a name!", password=""),
        Login(username="not a name!", password=""),
    ),
    (
        frame(type="send", room="General", text="hi", req=7),
        Send(text="hi", room="general", req=7),
    ),
    (
        frame(type="send", to="Bob", text="a\tb\nc", req="x"),
        Send(text="a\tb\nc", to="Bob", req="x"),
    ),
    (frame(type="send", room="dev", to=None, text="hi"), Send(text="hi", room="dev")),
    (frame(type="send", room="dev", text="é" * MAX_TEXT), Send(text="é" * MAX_TEXT, room="dev")),
    (frame(type="join", room="Dev", req=2), Join(room="dev", req=2)),
    (frame(type="leave", room="dev", req=3), Leave(room="dev", req=3)),
    (frame(type="rooms", req=4), ListRooms(req=4)),
    (frame(type="who", room="dev", req=5), Who(room="dev", req=5)),
    (
        frame(type="history", room="general", before=1042, limit=50, req=6),
        History(room="general", before=1042, limit=50, req=6),
    ),
    (
        frame(type="history", **{"with": "bob"}, after=900, req=9),
        History(with_="bob", after=900, req=9),
    ),
    (
        frame(type="history", room="general", after=0, req=10),
        History(room="general", after=0, req=10),
    ),
    (
        frame(type="history", room="general", before=2**63 - 1),
        History(room="general", before=2**63 - 1),
    ),
    (frame(type="history", room="a", limit=500), History(room="a", limit=500)),
    (frame(type="history", room="a", limit=1), History(room="a", limit=1)),
    (frame(type="history", room="a"), History(room="a", limit=50)),
    (frame(type="passwd", old="o", new="n", req=10), Passwd(old="o", new="n", req=10)),
    (frame(type="ping", req=11), ClientPing(req=11)),
    (frame(type="pong", req="s1"), ClientPong(req="s1")),
    (frame(type="logout"), Logout()),
    # Unknown fields are ignored; a null req is no req.
    (frame(type="ping", req=None, extra=[1, {"x": 2}]), ClientPing()),
    # Duplicate keys: the last one wins.
    (b'{"type":"join","room":"a","room":"b"}', Join(room="b")),
    (frame(type="ping", req="r" * 64), ClientPing(req="r" * 64)),
    (frame(type="ping", req=10**64 - 1), ClientPing(req=10**64 - 1)),
    (frame(type="ping", req=-(10**63) + 1), ClientPing(req=-(10**63) + 1)),
    # rooms2
    (
        frame(type="create", room="Ops", private=True, topic="on call", req=1),
        Create(room="ops", private=True, topic="on call", req=1),
    ),
    (frame(type="create", room="ops"), Create(room="ops")),
    (frame(type="create", room="ops", private=None, topic=None), Create(room="ops")),
    (frame(type="create", room="ops", topic="ü" * 300), Create(room="ops", topic="ü" * 300)),
    (
        frame(type="invite", room="ops", user="Bob", req=2),
        Invite(room="ops", user="Bob", req=2),
    ),
    (
        frame(type="topic", room="Ops", topic="deploys: friday", req=3),
        SetTopic(room="ops", topic="deploys: friday", req=3),
    ),
    (frame(type="topic", room="ops", topic=""), SetTopic(room="ops", topic="")),
    (
        frame(type="role", room="ops", user="bob", role="moderator", req=4),
        SetRole(room="ops", user="bob", role="moderator", req=4),
    ),
    (
        frame(type="role", room="ops", user="bob", role="owner"),
        SetRole(room="ops", user="bob", role="owner"),
    ),
    (
        frame(type="kick", room="ops", user="bob", reason="spam", req=5),
        Kick(room="ops", user="bob", reason="spam", req=5),
    ),
    (frame(type="kick", room="ops", user="bob"), Kick(room="ops", user="bob")),
    (
        frame(type="ban", room="ops", user="bob", reason="r" * 300, req="b"),
        Kick(room="ops", user="bob", reason="r" * 300, ban=True, req="b"),
    ),
    (frame(type="ban", room="ops", user="bob"), Kick(room="ops", user="bob", ban=True)),
    (frame(type="unban", room="ops", user="bob", req=6), Unban(room="ops", user="bob", req=6)),
    # edit
    (frame(type="edit", id=1042, text="fixed", req=6), Edit(id=1042, text="fixed", req=6)),
    (frame(type="edit", id=1, text="é" * MAX_TEXT), Edit(id=1, text="é" * MAX_TEXT)),
    (frame(type="edit", id=2**63 - 1, text="a\tb\nc"), Edit(id=2**63 - 1, text="a\tb\nc")),
    (frame(type="delete", id=1042, req=7), Delete(id=1042, req=7)),
    # read
    (
        frame(type="read", room="Dev", up_to=1042, req=8),
        MarkRead(up_to=1042, room="dev", req=8),
    ),
    (frame(type="read", **{"with": "bob"}, up_to=1), MarkRead(up_to=1, with_="bob")),
    # search
    (
        frame(type="search", q=' deploy "friday night" ', room="Dev", before=1042, limit=5, req=9),
        Search(q='deploy "friday night"', room="dev", before=1042, limit=5, req=9),
    ),
    (frame(type="search", q="x"), Search(q="x", limit=20)),
    (
        frame(type="search", q="x", **{"with": "bob"}, limit=100),
        Search(q="x", with_="bob", limit=100),
    ),
    # files
    (
        frame(type="file_offer", room="dev", name="Report 1.pdf", size=1, sha256="AB" * 32, req=1),
        FileOffer(room="dev", name="Report 1.pdf", size=1, sha256="ab" * 32, req=1),
    ),
    (
        frame(type="file_offer", to="bob", name="é.png", size=2**53, sha256="0" * 64),
        FileOffer(to="bob", name="é.png", size=2**53, sha256="0" * 64),
    ),
    (
        frame(type="file_chunk", upload="t0k", offset=0, data="AP8=", req=2),
        FileChunk(upload="t0k", offset=0, data=b"\x00\xff", req=2),
    ),
    (
        frame(type="file_chunk", upload="t", offset=47104, data=""),
        FileChunk(upload="t", offset=47104, data=b""),
    ),
    (frame(type="file_get", file="f1", req=3), FileGet(file="f1", req=3)),
    (frame(type="file_get", file="f1", offset=99), FileGet(file="f1", offset=99)),
]


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_valid_request(line: bytes, expected: Request) -> None:
    assert parse_request(line, MAX_TEXT) == expected


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_request_round_trip(line: bytes, expected: Request) -> None:
    encoded = encode(expected)
    assert encoded.endswith(b"\n")
    assert encoded.count(b"\n") == 1
    assert parse_request(encoded[:-1], MAX_TEXT) == expected


BAD_FRAMES = [
    b"\xff\xfe{}",
    b"not json",
    b"[1, 2]",
    b'"type"',
    b"null",
    b'{"type":"ping"',
    b'{"type":"ping","x":NaN}',
    b'{"type":"ping","x":-Infinity}',
    b'{"type":"ping","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"type":"ping","x":' + b"9" * 5000 + b"}",
    # UTF-16 is JSON to json.loads(bytes), but not to the contract.
    '{"type":"ping"}'.encode("utf-16"),
    '\ufeff{"type":"ping"}'.encode(),
]


@pytest.mark.parametrize("line", BAD_FRAMES)
def test_bad_frame(line: bytes) -> None:
    error = refusal(line)
    assert error.code is ErrorCode.BAD_FRAME
    assert error.req is None


@pytest.mark.parametrize(
    "req",
    [True, 1.5, "r" * 65, 10**64, -(10**63), [1], {"a": 1}, "\ud800"],
    ids=repr,
)
def test_unusable_req_is_bad_request_without_req(req: object) -> None:
    error = refusal(frame(type="ping", req=req))
    assert error.code is ErrorCode.BAD_REQUEST
    assert "req" in error.message
    assert error.req is None


@pytest.mark.parametrize("kind", ["shout", "", "PING", "message"])
def test_unknown_type_echoes_req(kind: str) -> None:
    error = refusal(frame(type=kind, req=3))
    assert error.code is ErrorCode.UNKNOWN_TYPE
    assert error.req == 3


def test_unknown_type_message_is_safe_to_echo() -> None:
    error = refusal(frame(type="\ud800" + "x" * 100, req=3))
    assert error.message.isascii()
    assert len(error.message) < 80


@pytest.mark.parametrize("kind", [None, 1, ["ping"]])
def test_missing_or_non_string_type_is_bad_request(kind: object) -> None:
    fields = {"req": "r"} if kind is None else {"type": kind, "req": "r"}
    error = refusal(frame(**fields))
    assert (error.code, error.req) == (ErrorCode.BAD_REQUEST, "r")
    assert "'type'" in error.message


# (fields without req, the field the message must name or None, expected code)
BAD = ErrorCode.BAD_REQUEST
INVALID: list[tuple[dict[str, object], str | None, ErrorCode]] = [
    ({"type": "login", "password": "pw"}, "username", ErrorCode.BAD_REQUEST),
    ({"type": "login", "username": "", "password": "pw"}, "username", ErrorCode.BAD_REQUEST),
    ({"type": "login", "username": "a" * 65, "password": "pw"}, "username", ErrorCode.BAD_REQUEST),
    ({"type": "login", "username": 5, "password": "pw"}, "username", ErrorCode.BAD_REQUEST),
    ({"type": "login", "username": "a"}, "password", ErrorCode.BAD_REQUEST),
    ({"type": "login", "username": "a", "password": "p" * 1025}, "password", ErrorCode.BAD_REQUEST),
    ({"type": "login", "username": "a", "password": "\udc00"}, "password", ErrorCode.BAD_REQUEST),
    ({"type": "send", "text": "hi"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "a", "to": "bob", "text": "hi"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "-bad", "text": "hi"}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": 7, "text": "hi"}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "send", "to": ".bob", "text": "hi"}, "to", ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "a"}, "text", ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "a", "text": ["hi"]}, "text", ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "a", "text": "nul\x00"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "a", "text": "esc\x1b"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "a", "text": "csi\x9b"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "a", "text": "nel\x85"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "a", "text": "lone \ud83d"}, "text", ErrorCode.BAD_REQUEST),
    ({"type": "send", "room": "a", "text": ""}, None, ErrorCode.EMPTY_TEXT),
    ({"type": "send", "room": "a", "text": " \n\t "}, None, ErrorCode.EMPTY_TEXT),
    ({"type": "send", "room": "a", "text": "x" * (MAX_TEXT + 1)}, None, ErrorCode.TEXT_TOO_LONG),
    ({"type": "join"}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "join", "room": "a" * 33}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "join", "room": "ü"}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "leave", "room": ""}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "who", "room": None}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "history"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "with": "bob"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "history", "with": "not valid"}, "with", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "before": 5, "after": 1}, None, ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "before": 0}, "before", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "after": -1}, "after", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "after": "1"}, "after", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "after": 1.0}, "after", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "before": 2**63}, "before", ErrorCode.BAD_REQUEST),
    ({"type": "history", "with": "bob", "after": 10**100}, "after", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "before": True}, "before", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "limit": 0}, "limit", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "limit": 501}, "limit", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "limit": 10**30}, "limit", ErrorCode.BAD_REQUEST),
    ({"type": "history", "room": "a", "limit": False}, "limit", ErrorCode.BAD_REQUEST),
    ({"type": "passwd", "new": "n"}, "old", ErrorCode.BAD_REQUEST),
    ({"type": "passwd", "old": "o"}, "new", ErrorCode.BAD_REQUEST),
    ({"type": "passwd", "old": "o", "new": "n" * 1025}, "new", ErrorCode.BAD_REQUEST),
    ({"type": "passwd", "old": 1, "new": "n"}, "old", ErrorCode.BAD_REQUEST),
    # rooms2
    ({"type": "create"}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "create", "room": "-ops"}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "create", "room": "ops", "private": "yes"}, "private", ErrorCode.BAD_REQUEST),
    ({"type": "create", "room": "ops", "private": 1}, "private", ErrorCode.BAD_REQUEST),
    ({"type": "create", "room": "ops", "topic": 5}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "create", "room": "ops", "topic": "t" * 301}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "create", "room": "ops", "topic": "a\nb"}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "invite", "room": "ops"}, "user", ErrorCode.BAD_REQUEST),
    ({"type": "invite", "user": "bob"}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "invite", "room": "ops", "user": "not valid"}, "user", ErrorCode.BAD_REQUEST),
    ({"type": "invite", "room": "ops", "user": ["bob"]}, "user", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "room": "ops"}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "topic": "t"}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "room": "ops", "topic": "t" * 301}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "room": "ops", "topic": "nul\x00"}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "room": "ops", "topic": "tab\t"}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "room": "ops", "topic": "esc\x1b[2J"}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "room": "ops", "topic": "del\x7f"}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "room": "ops", "topic": "csi\x9b"}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "room": "ops", "topic": "lone \ud83d"}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "topic", "room": "ops", "topic": True}, "topic", ErrorCode.BAD_REQUEST),
    ({"type": "role", "room": "ops", "user": "bob"}, "role", ErrorCode.BAD_REQUEST),
    (
        {"type": "role", "room": "ops", "user": "bob", "role": "admin"},
        "role",
        ErrorCode.BAD_REQUEST,
    ),
    (
        {"type": "role", "room": "ops", "user": "bob", "role": "Owner"},
        "role",
        ErrorCode.BAD_REQUEST,
    ),
    ({"type": "role", "room": "ops", "role": "member"}, "user", ErrorCode.BAD_REQUEST),
    ({"type": "kick", "room": "ops"}, "user", ErrorCode.BAD_REQUEST),
    ({"type": "kick", "user": "bob"}, "room", ErrorCode.BAD_REQUEST),
    ({"type": "kick", "room": "ops", "user": ".bob"}, "user", ErrorCode.BAD_REQUEST),
    ({"type": "kick", "room": "ops", "user": "bob", "reason": 1}, "reason", ErrorCode.BAD_REQUEST),
    (
        {"type": "kick", "room": "ops", "user": "bob", "reason": "r" * 301},
        "reason",
        ErrorCode.BAD_REQUEST,
    ),
    (
        {"type": "kick", "room": "ops", "user": "bob", "reason": "a\rb"},
        "reason",
        ErrorCode.BAD_REQUEST,
    ),
    ({"type": "ban", "room": "ops"}, "user", ErrorCode.BAD_REQUEST),
    (
        {"type": "ban", "room": "ops", "user": "bob", "reason": "r" * 301},
        "reason",
        ErrorCode.BAD_REQUEST,
    ),
    (
        {"type": "ban", "room": "ops", "user": "bob", "reason": "\x00"},
        "reason",
        ErrorCode.BAD_REQUEST,
    ),
    ({"type": "unban", "room": "ops"}, "user", ErrorCode.BAD_REQUEST),
    ({"type": "unban", "room": "OPS!", "user": "bob"}, "room", ErrorCode.BAD_REQUEST),
    # edit
    ({"type": "edit", "text": "hi"}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": 0, "text": "hi"}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": -5, "text": "hi"}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": "1", "text": "hi"}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": 1.0, "text": "hi"}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": True, "text": "hi"}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": 2**63, "text": "hi"}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": 1}, "text", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": 1, "text": 5}, "text", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": 1, "text": "nul\x00"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": 1, "text": "csi\x9b"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": 1, "text": "lone \ud83d"}, "text", ErrorCode.BAD_REQUEST),
    ({"type": "edit", "id": 1, "text": ""}, None, ErrorCode.EMPTY_TEXT),
    ({"type": "edit", "id": 1, "text": " \n\t "}, None, ErrorCode.EMPTY_TEXT),
    ({"type": "edit", "id": 1, "text": "x" * (MAX_TEXT + 1)}, None, ErrorCode.TEXT_TOO_LONG),
    ({"type": "delete"}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "delete", "id": 0}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "delete", "id": "1042"}, "id", ErrorCode.BAD_REQUEST),
    ({"type": "delete", "id": 10**100}, "id", ErrorCode.BAD_REQUEST),
    # read
    ({"type": "read", "up_to": 1}, None, ErrorCode.BAD_REQUEST),
    ({"type": "read", "room": "a", "with": "bob", "up_to": 1}, None, ErrorCode.BAD_REQUEST),
    ({"type": "read", "room": "a"}, "up_to", ErrorCode.BAD_REQUEST),
    ({"type": "read", "room": "a", "up_to": 0}, "up_to", ErrorCode.BAD_REQUEST),
    ({"type": "read", "room": "a", "up_to": "5"}, "up_to", ErrorCode.BAD_REQUEST),
    ({"type": "read", "room": "a", "up_to": False}, "up_to", ErrorCode.BAD_REQUEST),
    ({"type": "read", "room": "a", "up_to": 2**63}, "up_to", ErrorCode.BAD_REQUEST),
    ({"type": "read", "with": "no body", "up_to": 1}, "with", ErrorCode.BAD_REQUEST),
    ({"type": "read", "room": "-a", "up_to": 1}, "room", ErrorCode.BAD_REQUEST),
    # search
    ({"type": "search"}, "q", ErrorCode.BAD_REQUEST),
    ({"type": "search", "q": "   "}, "q", ErrorCode.BAD_REQUEST),
    ({"type": "search", "q": "a\x00b"}, "q", ErrorCode.BAD_REQUEST),
    ({"type": "search", "q": "x" * 201}, "q", ErrorCode.BAD_REQUEST),
    ({"type": "search", "q": "x", "room": "a", "with": "bob"}, None, ErrorCode.BAD_REQUEST),
    ({"type": "search", "q": "x", "limit": 0}, "limit", ErrorCode.BAD_REQUEST),
    ({"type": "search", "q": "x", "limit": 101}, "limit", ErrorCode.BAD_REQUEST),
    ({"type": "search", "q": "x", "before": 0}, "before", ErrorCode.BAD_REQUEST),
    # files
    (
        {"type": "file_offer", "name": "a", "size": 1, "sha256": "0" * 64},
        None,
        ErrorCode.BAD_REQUEST,
    ),
    *(
        (
            {"type": "file_offer", "room": "dev", "size": 1, "sha256": "0" * 64, "name": name},
            "name",
            ErrorCode.BAD_REQUEST,
        )
        for name in ["", " ", ".", "..", "a/b", "..\\x", "tab\tname", "x" * 256, 5]
    ),
    *(
        (
            {"type": "file_offer", "room": "dev", "name": "a", "sha256": "0" * 64, "size": size},
            "size",
            ErrorCode.BAD_REQUEST,
        )
        for size in [0, -1, 2**53 + 1, "5", 1.5, None]
    ),
    *(
        (
            {"type": "file_offer", "room": "dev", "name": "a", "size": 1, "sha256": sha},
            "sha256",
            ErrorCode.BAD_REQUEST,
        )
        for sha in ["0" * 63, "g" * 64, "0" * 65, None]
    ),
    ({"type": "file_chunk", "upload": "t", "data": "AA=="}, "offset", ErrorCode.BAD_REQUEST),
    (
        {"type": "file_chunk", "upload": "t", "offset": -1, "data": ""},
        "offset",
        ErrorCode.BAD_REQUEST,
    ),
    ({"type": "file_chunk", "offset": 0, "data": ""}, "upload", ErrorCode.BAD_REQUEST),
    (
        {"type": "file_chunk", "upload": "", "offset": 0, "data": ""},
        "upload",
        ErrorCode.BAD_REQUEST,
    ),
    (
        {"type": "file_chunk", "upload": "t" * 65, "offset": 0, "data": ""},
        "upload",
        ErrorCode.BAD_REQUEST,
    ),
    ({"type": "file_chunk", "upload": "t", "offset": 0}, "data", ErrorCode.BAD_REQUEST),
    (
        {"type": "file_chunk", "upload": "t", "offset": 0, "data": "A A="},
        "data",
        ErrorCode.BAD_REQUEST,
    ),
    (
        {"type": "file_chunk", "upload": "t", "offset": 0, "data": "AAA"},
        "data",
        ErrorCode.BAD_REQUEST,
    ),
    ({"type": "file_get"}, "file", ErrorCode.BAD_REQUEST),
    ({"type": "file_get", "file": "f", "offset": -2}, "offset", ErrorCode.BAD_REQUEST),
]


@pytest.mark.parametrize(("fields", "named", "code"), INVALID, ids=repr)
@pytest.mark.parametrize("req", [42, "abc"])
def test_invalid_request(
    fields: dict[str, object], named: str | None, code: ErrorCode, req: str | int
) -> None:
    error = refusal(frame(**fields, req=req))
    assert error.code is code
    assert error.req == req
    if named is not None:
        assert repr(named) in error.message
    assert error.message.isascii()


def test_every_wire_type_has_a_parser() -> None:
    assert set(_REQUEST_PARSERS) == REQUEST_WIRE_TYPES


@pytest.mark.parametrize(("ban", "kind"), [(False, "kick"), (True, "ban")])
def test_a_kick_is_sent_as_kick_or_ban(ban: bool, kind: str) -> None:
    wire = json.loads(encode(Kick(room="ops", user="bob", ban=ban, req=5)))
    assert wire == {"type": kind, "room": "ops", "user": "bob", "reason": "", "req": 5}


def test_envelope_carries_type_and_req_before_fields_are_checked() -> None:
    envelope = read_envelope(frame(type="send", req=9))
    assert (envelope.type, envelope.req) == ("send", 9)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Send(text="hi"),
        lambda: Send(text="hi", room="a", to="b"),
        History,
        lambda: History(room="a", with_="b"),
        lambda: History(room="a", before=2, after=1),
        lambda: MarkRead(up_to=1),
        lambda: MarkRead(up_to=1, room="a", with_="b"),
    ],
)
def test_building_a_forbidden_request_is_a_local_error(build: Callable[[], object]) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_secrets_stay_out_of_repr() -> None:
    assert "hunter2" not in repr(Login(username="a", password="hunter2"))
    assert "hunter2" not in repr(Passwd(old="hunter2", new="hunter2"))
