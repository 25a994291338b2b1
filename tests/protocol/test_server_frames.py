"""Server frames: exact wire form, round trips, and the client's lenient parsing."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from chatsecure.protocol import (
    Bye,
    ByeReason,
    ClientConnection,
    Deleted,
    Edited,
    Error,
    ErrorCode,
    FileData,
    FileInfo,
    FileSlot,
    Hello,
    HistoryReply,
    Invited,
    Joined,
    Kicked,
    LocalProtocolError,
    Member,
    MemberInfo,
    Message,
    Ok,
    Presence,
    ReadMarker,
    RemoteProtocolError,
    RoleChanged,
    RoomInfo,
    RoomsReply,
    SearchResults,
    ServerFrame,
    ServerPing,
    ServerPong,
    TopicChanged,
    UnknownFrame,
    Welcome,
    WhoReply,
    encode,
    parse_server_frame,
)
from chatsecure.protocol.codec import _one_shot_encoder

TS = "2026-11-21T10:00:00.123Z"
ROOM_MESSAGE = Message(id=1042, ts=TS, from_="alice", text="hi", room="general")
DIRECT_MESSAGE = Message(id=1043, ts=TS, from_="alice", text='ü\n"x"', to="bob")
EDITED_TS = "2026-11-21T10:05:00.456Z"

# Each frame with the exact JSON object the contract shows for it.
CONTRACT_SAMPLES: list[tuple[ServerFrame, dict[str, object]]] = [
    (
        Hello(max_frame_bytes=65536),
        {"type": "hello", "server": "chatsecure", "version": 1, "max_frame_bytes": 65536},
    ),
    (  # an addition to the contract: the release, when the server says it
        Hello(max_frame_bytes=65536, server_version="0.1.0"),
        {
            "type": "hello",
            "server": "chatsecure",
            "version": 1,
            "max_frame_bytes": 65536,
            "server_version": "0.1.0",
        },
    ),
    (
        Welcome(req=1, user="alice", rooms=("dev", "general")),
        {"type": "welcome", "req": 1, "user": "alice", "rooms": ["dev", "general"]},
    ),
    (
        Error(req=1, code=ErrorCode.AUTH_FAILED, message="invalid username or password"),
        {
            "type": "error",
            "req": 1,
            "code": "auth_failed",
            "message": "invalid username or password",
        },
    ),
    (
        Error(req=1, code=ErrorCode.RATE_LIMITED, message="slow down", retry_after=30),
        {
            "type": "error",
            "req": 1,
            "code": "rate_limited",
            "message": "slow down",
            "retry_after": 30,
        },
    ),
    (
        Error(code=ErrorCode.BAD_FRAME, message="m"),
        {"type": "error", "code": "bad_frame", "message": "m"},
    ),
    (Ok(req=7, id=1042, ts=TS), {"type": "ok", "req": 7, "id": 1042, "ts": TS}),
    (Ok(req=3), {"type": "ok", "req": 3}),
    (Joined(req=2, room="dev"), {"type": "joined", "req": 2, "room": "dev"}),
    (
        RoomsReply(req=4, rooms=(RoomInfo(name="general", members=12, joined=True),)),
        {"type": "rooms", "req": 4, "rooms": [{"name": "general", "members": 12, "joined": True}]},
    ),
    (
        WhoReply(req=5, room="dev", members=(MemberInfo(user="alice", online=True),)),
        {"type": "who", "req": 5, "room": "dev", "members": [{"user": "alice", "online": True}]},
    ),
    (
        HistoryReply(req=6, room="general", messages=(ROOM_MESSAGE,), more=True),
        {
            "type": "history",
            "req": 6,
            "room": "general",
            "messages": [
                {
                    "type": "message",
                    "id": 1042,
                    "ts": TS,
                    "from": "alice",
                    "room": "general",
                    "text": "hi",
                }
            ],
            "more": True,
        },
    ),
    (
        HistoryReply(with_="bob", messages=(), more=False),
        {"type": "history", "with": "bob", "messages": [], "more": False},
    ),
    (ServerPong(req=11), {"type": "pong", "req": 11}),
    (ServerPing(), {"type": "ping"}),
    (Bye(reason=ByeReason.LOGOUT), {"type": "bye", "reason": "logout"}),
    (
        ROOM_MESSAGE,
        {"type": "message", "id": 1042, "ts": TS, "from": "alice", "room": "general", "text": "hi"},
    ),
    (
        DIRECT_MESSAGE,
        {"type": "message", "id": 1043, "ts": TS, "from": "alice", "to": "bob", "text": 'ü\n"x"'},
    ),
    (
        Member(room="dev", user="bob", event="joined"),
        {"type": "member", "room": "dev", "user": "bob", "event": "joined"},
    ),
    (
        Presence(user="bob", status="offline"),
        {"type": "presence", "user": "bob", "status": "offline"},
    ),
    # The contract's additions: hello features, rooms2, edit and read.
    (
        Hello(max_frame_bytes=65536, features=("rooms2", "edit", "read")),
        {
            "type": "hello",
            "server": "chatsecure",
            "version": 1,
            "max_frame_bytes": 65536,
            "features": ["rooms2", "edit", "read"],
        },
    ),
    (
        Joined(req=1, room="ops", topic="on call", private=True, role="owner"),
        {
            "type": "joined",
            "req": 1,
            "room": "ops",
            "topic": "on call",
            "private": True,
            "role": "owner",
        },
    ),
    (
        Joined(room="dev", topic="", private=False, role="member"),
        {"type": "joined", "room": "dev", "topic": "", "private": False, "role": "member"},
    ),
    (
        RoomsReply(
            rooms=(RoomInfo(name="ops", members=2, joined=True, topic="on call", private=True),)
        ),
        {
            "type": "rooms",
            "rooms": [
                {"name": "ops", "members": 2, "joined": True, "topic": "on call", "private": True}
            ],
        },
    ),
    (
        WhoReply(room="ops", members=(MemberInfo(user="bob", online=False, role="moderator"),)),
        {
            "type": "who",
            "room": "ops",
            "members": [{"user": "bob", "online": False, "role": "moderator"}],
        },
    ),
    (
        Invited(room="ops", by="alice", topic="on call"),
        {"type": "invited", "room": "ops", "by": "alice", "topic": "on call"},
    ),
    (
        Invited(room="ops", by="alice"),
        {"type": "invited", "room": "ops", "by": "alice", "topic": ""},
    ),
    (
        TopicChanged(room="ops", topic="deploys on friday", by="alice"),
        {"type": "topic", "room": "ops", "topic": "deploys on friday", "by": "alice"},
    ),
    (
        TopicChanged(room="ops", topic="", by="alice"),
        {"type": "topic", "room": "ops", "topic": "", "by": "alice"},
    ),
    (
        RoleChanged(room="ops", user="bob", role="moderator", by="alice"),
        {"type": "role", "room": "ops", "user": "bob", "role": "moderator", "by": "alice"},
    ),
    (
        Kicked(room="ops", by="alice", reason="spam"),
        {"type": "kicked", "room": "ops", "by": "alice", "reason": "spam", "ban": False},
    ),
    (
        Kicked(room="ops", by="alice", ban=True),
        {"type": "kicked", "room": "ops", "by": "alice", "reason": "", "ban": True},
    ),
    (
        Edited(id=1042, room="dev", text="fixed", edited_ts=EDITED_TS, by="alice"),
        {
            "type": "edited",
            "id": 1042,
            "room": "dev",
            "text": "fixed",
            "edited_ts": EDITED_TS,
            "by": "alice",
        },
    ),
    (
        Edited(id=1043, to="bob", text="ü", edited_ts=EDITED_TS, by="alice"),
        {
            "type": "edited",
            "id": 1043,
            "to": "bob",
            "text": "ü",
            "edited_ts": EDITED_TS,
            "by": "alice",
        },
    ),
    (
        Deleted(id=1042, room="dev", by="alice"),
        {"type": "deleted", "id": 1042, "room": "dev", "by": "alice"},
    ),
    (
        Deleted(id=1043, to="bob", by="alice"),
        {"type": "deleted", "id": 1043, "to": "bob", "by": "alice"},
    ),
    (
        ReadMarker(room="dev", up_to=1042),
        {"type": "read", "room": "dev", "up_to": 1042},
    ),
    (
        ReadMarker(with_="bob", up_to=7),
        {"type": "read", "with": "bob", "up_to": 7},
    ),
    (
        SearchResults(
            results=(
                Message(
                    id=9,
                    ts=EDITED_TS,
                    from_="bob",
                    text="a.png",
                    room="dev",
                    file=FileInfo(id="f1", name="a.png", size=3, sha256="0" * 64, mime="image/png"),
                ),
            ),
            more=False,
            req=4,
        ),
        {
            "type": "search",
            "req": 4,
            "results": [
                {
                    "type": "message",
                    "id": 9,
                    "ts": EDITED_TS,
                    "from": "bob",
                    "room": "dev",
                    "text": "a.png",
                    "file": {
                        "id": "f1",
                        "name": "a.png",
                        "size": 3,
                        "sha256": "0" * 64,
                        "mime": "image/png",
                    },
                }
            ],
            "more": False,
        },
    ),
    (
        FileSlot(upload="tok", chunk_bytes=47104, req=10),
        {"type": "file_slot", "req": 10, "upload": "tok", "chunk_bytes": 47104},
    ),
    (
        FileData(file="f1", offset=3, data=b"\x00\xff", last=True, req=12),
        {"type": "file_data", "req": 12, "file": "f1", "offset": 3, "data": "AP8=", "last": True},
    ),
    (Ok(req=11, received=32768), {"type": "ok", "req": 11, "received": 32768}),
    (
        Error(code="bad_upload", message="resume", req=11, received=5),
        {"type": "error", "req": 11, "code": "bad_upload", "message": "resume", "received": 5},
    ),
    (
        Ok(req=6, edited_ts=EDITED_TS),
        {"type": "ok", "req": 6, "edited_ts": EDITED_TS},
    ),
    (
        Message(id=1042, ts=TS, from_="alice", text="fixed", room="dev", edited_ts=EDITED_TS),
        {
            "type": "message",
            "id": 1042,
            "ts": TS,
            "from": "alice",
            "room": "dev",
            "text": "fixed",
            "edited_ts": EDITED_TS,
        },
    ),
    (
        Message(id=1042, ts=TS, from_="alice", text=None, room="dev", deleted=True),
        {"type": "message", "id": 1042, "ts": TS, "from": "alice", "room": "dev", "deleted": True},
    ),
    (
        HistoryReply(room="dev", messages=(), more=False, read_up_to=0, req=2),
        {
            "type": "history",
            "req": 2,
            "room": "dev",
            "messages": [],
            "more": False,
            "read_up_to": 0,
        },
    ),
    (
        HistoryReply(with_="bob", messages=(DIRECT_MESSAGE,), more=True, read_up_to=1043),
        {
            "type": "history",
            "with": "bob",
            "messages": [
                {
                    "type": "message",
                    "id": 1043,
                    "ts": TS,
                    "from": "alice",
                    "to": "bob",
                    "text": 'ü\n"x"',
                }
            ],
            "more": True,
            "read_up_to": 1043,
        },
    ),
]


@pytest.mark.parametrize(("event", "wire"), CONTRACT_SAMPLES)
def test_wire_form(event: ServerFrame, wire: dict[str, object]) -> None:
    encoded = encode(event)
    assert encoded.endswith(b"\n")
    assert b"\n" not in encoded[:-1]
    assert b": " not in encoded  # compact separators
    assert json.loads(encoded) == wire


@pytest.mark.parametrize(("event", "wire"), CONTRACT_SAMPLES)
def test_round_trip(event: ServerFrame, wire: dict[str, object]) -> None:
    assert parse_server_frame(encode(event)[:-1]) == event


@pytest.mark.parametrize(("event", "wire"), CONTRACT_SAMPLES)
def test_round_trip_one_byte_at_a_time(event: ServerFrame, wire: dict[str, object]) -> None:
    client = ClientConnection()
    found = []
    for byte in encode(event):
        client.receive_data(bytes([byte]))
        while (frame := client.next_event()) is not None:
            found.append(frame)
    assert found == [event]


def test_optional_additions_default_when_absent() -> None:
    assert parse_server_frame(b'{"type":"invited","room":"ops","by":"a"}') == Invited(
        room="ops", by="a"
    )
    assert parse_server_frame(b'{"type":"kicked","room":"ops","by":"a"}') == Kicked(
        room="ops", by="a"
    )
    assert parse_server_frame(
        b'{"type":"hello","server":"s","version":1,"max_frame_bytes":9,"features":null}'
    ) == Hello(server="s", max_frame_bytes=9)


def test_a_deleted_messages_leftover_text_is_dropped() -> None:
    line = b'{"type":"message","id":1,"ts":"t","from":"a","room":"r","text":"","deleted":true}'
    assert parse_server_frame(line) == Message(
        id=1, ts="t", from_="a", text=None, room="r", deleted=True
    )


def test_non_ascii_text_is_sent_as_utf8() -> None:
    assert "ü".encode() in encode(DIRECT_MESSAGE)


def test_unknown_fields_are_ignored() -> None:
    line = b'{"type":"presence","user":"bob","status":"online","since":"yesterday"}'
    assert parse_server_frame(line) == Presence(user="bob", status="online")


def test_unknown_type_is_kept_not_refused() -> None:
    event = parse_server_frame(b'{"type":"typing","room":"dev","user":"bob"}')
    assert event == UnknownFrame(
        type="typing", data={"type": "typing", "room": "dev", "user": "bob"}
    )


def test_unknown_codes_and_reasons_are_kept() -> None:
    assert parse_server_frame(b'{"type":"error","code":"new_code","message":"m"}') == Error(
        code="new_code", message="m"
    )
    assert parse_server_frame(b'{"type":"bye","reason":"maintenance"}') == Bye(reason="maintenance")


@pytest.mark.parametrize(
    "line",
    [
        b"\xff",
        b"[]",
        b"{}",
        b'{"type":5}',
        b'{"type":"ok","req":true}',
        b'{"type":"ok","id":"1"}',
        b'{"type":"hello","server":"chatsecure","version":1}',
        b'{"type":"welcome","user":"a","rooms":"dev"}',
        b'{"type":"welcome","user":"a","rooms":[1]}',
        b'{"type":"rooms","rooms":[{"name":"a","members":1,"joined":"yes"}]}',
        b'{"type":"rooms","rooms":["a"]}',
        b'{"type":"who","room":"a","members":[{"user":"a"}]}',
        b'{"type":"history","room":"a","with":"b","messages":[],"more":false}',
        b'{"type":"history","room":"a","messages":[{"id":1}],"more":false}',
        b'{"type":"message","id":1,"ts":"t","from":"a","text":"x"}',
        b'{"type":"message","id":1,"ts":"t","from":"a","text":"x","room":"r","to":"b"}',
        b'{"type":"member","room":"a","user":"b","event":"kicked"}',
        b'{"type":"presence","user":"b","status":"away"}',
        b'{"type":"bye"}',
        b'{"type":"hello","server":"s","version":1,"max_frame_bytes":9,"features":"edit"}',
        b'{"type":"hello","server":"s","version":1,"max_frame_bytes":9,"features":[1]}',
        b'{"type":"ok","edited_ts":5}',
        b'{"type":"joined","room":"a","role":"admin"}',
        b'{"type":"joined","room":"a","private":"no"}',
        b'{"type":"joined","room":"a","topic":1}',
        b'{"type":"rooms","rooms":[{"name":"a","members":1,"joined":true,"private":1}]}',
        b'{"type":"who","room":"a","members":[{"user":"a","online":true,"role":"boss"}]}',
        b'{"type":"message","id":1,"ts":"t","from":"a","room":"r"}',
        b'{"type":"message","id":1,"ts":"t","from":"a","room":"r","text":"x","deleted":"yes"}',
        b'{"type":"message","id":1,"ts":"t","from":"a","room":"r","text":"x","edited_ts":1}',
        b'{"type":"history","room":"a","messages":[],"more":false,"read_up_to":"1"}',
        b'{"type":"invited","room":"a"}',
        b'{"type":"invited","by":"b"}',
        b'{"type":"topic","room":"a","by":"b"}',
        b'{"type":"topic","room":"a","topic":"t"}',
        b'{"type":"role","room":"a","user":"b","by":"c"}',
        b'{"type":"role","room":"a","user":"b","role":"king","by":"c"}',
        b'{"type":"kicked","room":"a","by":"b","ban":"true"}',
        b'{"type":"kicked","by":"b"}',
        b'{"type":"edited","id":1,"text":"x","edited_ts":"t","by":"b"}',
        b'{"type":"edited","id":1,"room":"r","to":"u","text":"x","edited_ts":"t","by":"b"}',
        b'{"type":"edited","id":1,"room":"r","edited_ts":"t","by":"b"}',
        b'{"type":"edited","id":1,"room":"r","text":"x","by":"b"}',
        b'{"type":"deleted","id":1,"by":"b"}',
        b'{"type":"deleted","id":"1","room":"r","by":"b"}',
        b'{"type":"deleted","id":1,"room":"r"}',
        b'{"type":"read","up_to":1}',
        b'{"type":"read","room":"r","with":"u","up_to":1}',
        b'{"type":"read","room":"r"}',
    ],
)
def test_malformed_known_frame_is_a_remote_error(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_server_frame(line)
    assert caught.value.code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    "build",
    [
        lambda: Message(id=1, ts=TS, from_="a", text="x"),
        lambda: Message(id=1, ts=TS, from_="a", text="x", room="r", to="b"),
        lambda: HistoryReply(messages=(), more=False),
        lambda: Message(id=1, ts=TS, from_="a", text=None, room="r"),
        lambda: Message(id=1, ts=TS, from_="a", text="x", room="r", deleted=True),
        lambda: Edited(id=1, text="x", edited_ts=TS, by="a"),
        lambda: Edited(id=1, text="x", edited_ts=TS, by="a", room="r", to="b"),
        lambda: Deleted(id=1, by="a"),
        lambda: Deleted(id=1, by="a", room="r", to="b"),
        lambda: ReadMarker(up_to=1),
        lambda: ReadMarker(up_to=1, room="r", with_="b"),
    ],
)
def test_building_a_forbidden_frame_is_a_local_error(build: Callable[[], object]) -> None:
    with pytest.raises(LocalProtocolError):
        build()


def test_unencodable_text_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        encode(Message(id=1, ts=TS, from_="a", text="\ud800", room="r"))


ENCODER_SAMPLES: list[object] = [
    {"type": "message", "id": 7, "text": 'quote " backslash \\ newline \n tab \t ü 漢 🙂'},
    {"nested": [1, -2, True, False, None, {"a": []}], "req": "x" * 64},
    {"control": "\x00\x1f\x7f", "big": 10**40},
]


@pytest.mark.parametrize("value", ENCODER_SAMPLES)
def test_the_one_shot_encoder_writes_what_json_writes(value: object) -> None:
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
    assert _one_shot_encoder(encoder)(value) == encoder.encode(value)


def test_without_the_c_encoder_the_standard_one_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert _one_shot_encoder(encoder) == encoder.encode


def test_the_one_shot_encoder_refuses_what_json_refuses() -> None:
    encoder = json.JSONEncoder(allow_nan=False, check_circular=False)
    with pytest.raises(ValueError, match="Out of range float"):
        _one_shot_encoder(encoder)({"x": float("nan")})
    with pytest.raises(TypeError):
        _one_shot_encoder(encoder)({"x": object()})
