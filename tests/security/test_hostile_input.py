"""Hostile input: random and mutated bytes at the protocol layer and at a live server.

``tests/protocol/test_properties.py`` already throws random chunks and request-shaped
JSON at ``ServerConnection``. This module adds what an attacker would aim with:
mutations of *valid* frames (flipped bytes, invalid UTF-8 spliced in, truncation),
values of the wrong type in every field, unknown fields, control characters, deep and
huge JSON, and arbitrary split points. Then the same ammunition goes over real TLS to a
live server, while a bystander keeps chatting through it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from chatsecure.protocol import (
    ByeReason,
    ErrorCode,
    Request,
    ServerConnection,
    Violation,
)
from tests.e2e.client import ConnectionClosed
from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import assert_error, join, send_room
from tests.serverproc import password_of

CAP = 4096
BIG = 65_536  # the default frame cap: room for JSON nested 30,000 deep
MAX_TEXT = 200
# Valid requests of every type; mutations start from these.
VALID: list[dict[str, Any]] = [
    {"type": "login", "username": "alice", "password": "pw-alice-Secret!", "req": 1},
    {"type": "send", "room": "general", "text": "hi there", "req": 2},
    {"type": "send", "to": "bob", "text": "hi bob", "req": "s"},
    {"type": "join", "room": "dev", "req": 3},
    {"type": "leave", "room": "dev"},
    {"type": "rooms", "req": 4},
    {"type": "who", "room": "dev"},
    {"type": "history", "room": "general", "before": 10, "limit": 5},
    {"type": "history", "with": "bob", "after": 1, "req": "h"},
    {"type": "passwd", "old": "old-password-1", "new": "new-password-2"},
    {"type": "ping", "req": 5},
    {"type": "pong"},
    {"type": "logout"},
]
# What a client may be told about its own mistakes; server_error would mean we crashed.
PEER_FAULTS = {code.value for code in ErrorCode} - {ErrorCode.SERVER_ERROR.value}
INVALID_UTF8 = [
    b"\xff",
    b"\xc3\x28",  # a lead byte without its continuation
    b"\xe2\x82",  # truncated three-byte sequence
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xc0\xaf",  # overlong "/"
    b"\xf8\x88\x80\x80\x80",  # five-byte form
]
CONTROL = "".join(map(chr, [*range(0, 9), 11, 12, *range(14, 32), 127]))

wrong_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(alphabet=CONTROL, min_size=1, max_size=5),
    st.text(max_size=80),
)
unknown_fields = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k not in {"type", "req"}),
    st.integers() | st.text(max_size=8) | st.none(),
    max_size=3,
)


def _line(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid frame, then one hostile change to it."""
    frame = dict(draw(st.sampled_from(VALID)))
    kind = draw(
        st.sampled_from(["retype", "unknown", "control", "utf8", "flip", "truncate", "deep"])
    )
    if kind == "retype":
        field = draw(st.sampled_from(sorted(frame)))
        frame[field] = draw(wrong_values)
        return _line(frame)
    if kind == "unknown":
        return _line({**draw(unknown_fields), **frame})
    if kind == "control":
        field = draw(st.sampled_from(sorted(frame)))
        frame[field] = f"a{draw(st.sampled_from(CONTROL))}b"
        return _line(frame)
    data = bytearray(_line(frame)[:-1])
    position = draw(st.integers(0, len(data)))
    if kind == "utf8":
        data[position:position] = draw(st.sampled_from(INVALID_UTF8))
    elif kind == "flip" and data:
        index = min(position, len(data) - 1)
        data[index] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        del data[position:]
    else:  # nested far deeper than any parser's recursion limit, inside the cap
        depth = draw(st.integers(1_000, CAP // 2 - 8))
        data = bytearray(b"[" * depth + b"]" * depth)
    return bytes(data) + b"\n"


@st.composite
def split_points(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return pieces


def _drain(connection: ServerConnection) -> list[Request | Violation]:
    events: list[Request | Violation] = []
    while (event := connection.next_event()) is not None:
        if isinstance(event, Violation):
            assert event.error.code in PEER_FAULTS, event
            assert event.close is None or ByeReason(event.close)
            connection.send(event.error)  # the reply itself must encode
        events.append(event)
    assert connection.buffered_bytes < CAP
    return events


# --- the protocol layer, no sockets ------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.lists(mutated_frames(), min_size=1, max_size=8), st.booleans(), st.data())
def test_mutated_frames_give_only_contract_errors_at_any_split(
    frames: list[bytes], logged_in: bool, data: st.DataObject
) -> None:
    stream = b"".join(frames)
    whole = ServerConnection(max_frame_bytes=CAP, max_text_chars=MAX_TEXT)
    pieces = data.draw(split_points(stream))
    split = ServerConnection(max_frame_bytes=CAP, max_text_chars=MAX_TEXT)
    if logged_in:
        whole.login_succeeded()
        split.login_succeeded()
    whole.receive_data(stream)
    expected = _drain(whole)
    got: list[Request | Violation] = []
    for piece in pieces:
        split.receive_data(piece)
        got.extend(_drain(split))
    # Where the stream is cut never changes what it means.
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VALID), unknown_fields)
def test_unknown_fields_are_ignored(frame: dict[str, Any], extra: dict[str, Any]) -> None:
    def parse(line: bytes) -> Request | Violation | None:
        connection = ServerConnection(max_frame_bytes=CAP, max_text_chars=MAX_TEXT)
        if frame["type"] != "login":
            connection.login_succeeded()
        connection.receive_data(line)
        return connection.next_event()

    assert parse(_line({**extra, **frame})) == parse(_line(frame))


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"[" * BIG, ErrorCode.FRAME_TOO_LARGE),  # no newline: refused at the cap
        (b"[" * (BIG // 2 - 1) + b"]" * (BIG // 2 - 1) + b"\n", ErrorCode.BAD_FRAME),
        (b'{"":' * 10_000 + b"1" + b"}" * 10_000 + b"\n", ErrorCode.BAD_FRAME),
        (b'{"type":"ping","req":' + b"9" * 60_000 + b"}\n", ErrorCode.BAD_FRAME),
        (b'{"type":"history","room":"a","limit":1e999}\n', ErrorCode.BAD_REQUEST),
        (b'{"type":"ping","req":NaN}\n', ErrorCode.BAD_FRAME),
        (b'{"type":"send","room":"a","text":"\\ud800"}\n', ErrorCode.BAD_REQUEST),
        (b'{"type":"send","room":"a","text":"a\\u0000b"}\n', ErrorCode.BAD_REQUEST),
        (_line({"type": "send", "room": "a", "text": "x" * 201}), ErrorCode.TEXT_TOO_LONG),
        (b'{"type":"send","room":"a","text":"\xc3"}\n', ErrorCode.BAD_FRAME),
    ],
    ids=[
        "deep-no-newline",
        "deep-array",
        "deep-object",
        "huge-integer",
        "float-overflow",
        "nan",
        "lone-surrogate",
        "nul",
        "text-too-long",
        "broken-utf8",
    ],
)
def test_pathological_json_is_refused_quickly(line: bytes, code: ErrorCode) -> None:
    connection = ServerConnection(max_frame_bytes=BIG, max_text_chars=MAX_TEXT)
    connection.login_succeeded()
    started = time.perf_counter()
    connection.receive_data(line)
    event = connection.next_event()
    assert time.perf_counter() - started < 1.0
    assert isinstance(event, Violation), event
    assert event.error.code == code
    connection.send(event.error)


# --- a live server -------------------------------------------------------------------------

SERVER_CONFIG = {"limits": {"max_frame_bytes": CAP, "max_text_chars": MAX_TEXT}}
ROOM = "hostile"

hostile_lines = st.one_of(
    mutated_frames(),
    st.binary(min_size=1, max_size=300).map(lambda b: b + b"\n"),
    st.binary(min_size=CAP, max_size=CAP + 100),  # oversize, with or without a newline
)


class Bystander:
    """Two honest users in one room; ``check`` proves a message still goes through."""

    def __init__(self, server: ServerProcess) -> None:
        self.sender, self.receiver = (server.login(u) for u in server.new_users(2))
        join(self.sender, ROOM)
        join(self.receiver, ROOM)
        self.count = 0

    def check(self) -> None:
        self.count += 1
        text = f"still chatting {self.count}"
        message_id = send_room(self.sender, ROOM, text)
        assert self.receiver.expect("message", id=message_id)["text"] == text


def _attack(server: ServerProcess, user: str | None, lines: list[bytes], records: bool) -> None:
    """Send ``lines`` (each as one TLS record, or a byte per record), then a ping.

    Every reply up to the pong, or up to the close, must be what the contract allows.
    """
    attacker = server.connect()
    if user is not None:
        attacker.login_and_settle(user, password_of(user))
    replies: list[dict[str, Any]] = []
    try:
        for line in lines:
            if records:
                for byte in line:
                    attacker.send_raw(bytes([byte]))
            else:
                attacker.send_raw(line)
        # The newline ends whatever partial line the attack left, so the ping is its own frame.
        attacker.send_raw(b"\n")
        attacker.send({"type": "ping", "req": "barrier"})
        while not (replies and replies[-1] == {"type": "pong", "req": "barrier"}):
            replies.append(attacker.next_frame(10))
    except (ConnectionClosed, OSError):
        # It broke a rule that ends connections: the last frame must say which.
        replies.extend(attacker.wait_closed(10))
        assert replies, "closed without a word"
        assert replies[-1]["type"] == "bye", _short(replies)
        assert replies[-1]["reason"] in {"frame_too_large", "too_many_errors", "logout"}
    for reply in replies:
        if reply["type"] == "error":
            assert reply["code"] in PEER_FAULTS, reply
    attacker.close()


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 500 else text[:500] + "..."


@pytest.fixture
def bystander(server: ServerProcess) -> Bystander:
    return Bystander(server)


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    # No shrinking: every example costs a connection, and the failing one is printed as is.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(hostile_lines, min_size=1, max_size=6), st.booleans(), st.booleans())
def test_live_server_survives_hostile_frames_and_others_keep_chatting(
    server: ServerProcess,
    bystander: Bystander,
    lines: list[bytes],
    logged_in: bool,
    byte_records: bool,
) -> None:
    user = server.new_user() if logged_in else None
    # A byte per TLS record is slow to send; keep it to short streams.
    records = byte_records and sum(map(len, lines)) < 600
    _attack(server, user, lines, records)
    assert server.running, server.output()
    bystander.check()


def test_a_frame_split_across_many_tls_records(server: ServerProcess, bystander: Bystander) -> None:
    """A request a byte per TLS record is one request; the bystander is not held up."""
    user = server.new_user()
    client = server.member(user, ROOM)
    frame = encode_send(ROOM, "one byte at a time", "split")
    for index, byte in enumerate(frame):
        client.send_raw(bytes([byte]))
        if index % 20 == 0:
            bystander.check()
    reply = client.expect(None, req="split")
    assert reply["type"] == "ok", reply
    message = bystander.receiver.expect("message", id=reply["id"])
    assert message["from"] == user


def test_an_oversize_frame_dribbled_in_small_records_is_cut_at_the_cap(
    server: ServerProcess,
) -> None:
    client = server.connect()
    sent = 0
    try:
        while sent < CAP * 4:  # the server must not wait for a newline that never comes
            client.send_raw(b"x" * 100)
            sent += 100
    except OSError:
        pass
    (error,) = client.expect_bye("frame_too_large")
    assert_error(error, "frame_too_large")
    assert server.running


@pytest.mark.parametrize(
    "fields",
    [
        {"room": ROOM, "before": 2**63},
        {"room": ROOM, "after": 10**100},
        {"with": "PEER", "before": 2**63},
        {"with": "PEER", "after": 2**64},
    ],
    ids=["room-before-2^63", "room-after-10^100", "with-before-2^63", "with-after-2^64"],
)
def test_integers_beyond_64_bits_are_bad_request(
    server: ServerProcess, fields: dict[str, Any]
) -> None:
    """Message ids are 64-bit: a larger one is the peer's mistake, refused at the edge."""
    user, peer = server.new_users(2)
    client = server.member(user, ROOM)
    if fields.get("with") == "PEER":
        fields = {**fields, "with": peer}
    reply = client.request({"type": "history", **fields})
    assert_error(reply, "bad_request")
    assert "64-bit" in reply["message"], reply
    # The largest 64-bit id is an ordinary id that no message has yet.
    largest = {k: (2**63 - 1 if k in ("before", "after") else v) for k, v in fields.items()}
    assert client.request({"type": "history", **largest})["type"] == "history"


def test_no_tracebacks_in_the_log(server: ServerProcess) -> None:
    """Everything above was the peer's fault: nothing may have failed inside the server."""
    output = server.output()
    assert "Traceback" not in output, output[-4000:]
    assert " ERROR " not in output, output[-4000:]


def encode_send(room: str, text: str, req: str) -> bytes:
    return json.dumps({"type": "send", "room": room, "text": text, "req": req}).encode() + b"\n"
