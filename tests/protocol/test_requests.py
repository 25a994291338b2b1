"""parse_request: every request type, and every way a client frame can be refused."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from chatsecure.protocol import (
    ClientPing,
    ClientPong,
    ErrorCode,
    History,
    Join,
    Leave,
    ListRooms,
    LocalProtocolError,
    Login,
    Logout,
    Passwd,
    RemoteProtocolError,
    Request,
    Send,
    Who,
    encode,
    parse_request,
)
from chatsecure.protocol.codec import read_envelope

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
    ],
)
def test_building_a_forbidden_request_is_a_local_error(build: Callable[[], object]) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_secrets_stay_out_of_repr() -> None:
    assert "hunter2" not in repr(Login(username="a", password="hunter2"))
    assert "hunter2" not in repr(Passwd(old="hunter2", new="hunter2"))
