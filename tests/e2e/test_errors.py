"""Framing and validation errors: codes, echoed req, and when the connection ends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatsecure.package import version
from tests.e2e.client import ChatClient
from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import assert_error, send_room

MAX_FRAME = 1024
MAX_TEXT = 100
SERVER_CONFIG = {"limits": {"max_frame_bytes": MAX_FRAME, "max_text_chars": MAX_TEXT}}
ROOM = "errors"


@pytest.fixture(scope="module")
def member(module_server: ServerProcess) -> str:
    """The account the tests here use: errors belong to a connection, not to an account."""
    return module_server.new_user()


@pytest.fixture
def client(server: ServerProcess, member: str) -> ChatClient:
    """A new connection, logged in as a member of ``ROOM``."""
    return server.member(member, ROOM)


def still_serving(client: ChatClient) -> None:
    assert client.request({"type": "ping", "req": "alive"}) == {"type": "pong", "req": "alive"}


def test_hello_announces_the_configured_frame_limit(server: ServerProcess) -> None:
    assert server.connect().hello == {
        "type": "hello",
        "server": "chatsecure",
        "version": 1,
        "max_frame_bytes": MAX_FRAME,
        "server_version": version(),
        "features": ["rooms2", "edit", "read", "search", "files"],
    }


@pytest.mark.parametrize(
    "line",
    [
        b"\xff\xfe{}",
        b'{"type":"ping","req":"\xc3"}',
        b"{nope",
        b"[1, 2]",
        b"42",
        b'"ping"',
        b"null",
    ],
    ids=["not-utf8", "broken-utf8", "not-json", "array", "number", "string", "null"],
)
def test_bad_frame(server: ServerProcess, client: ChatClient, line: bytes) -> None:
    for connection in (client, server.connect()):  # after login and before it
        connection.send_raw(line + b"\n")
        reply = connection.next_frame()
        assert_error(reply, "bad_frame")
        assert "req" not in reply
        still_serving(connection)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "send", "room": ROOM},
        {"type": "send", "room": ROOM, "text": 5},
        {"type": "send", "text": "to whom?"},
        {"type": "send", "room": ROOM, "to": "someone", "text": "both"},
        {"type": "send", "room": ["errors"], "text": "hi"},
        {"type": "join"},
        {"type": "join", "room": None},
        {"type": "leave", "room": 3},
        {"type": "who"},
        {"type": "history", "room": ROOM, "limit": 0},
        {"type": "history", "room": ROOM, "limit": 501},
        {"type": "passwd", "old": "only old"},
        {"type": 5},
        {},
    ],
    ids=json.dumps,
)
def test_bad_request_echoes_req(client: ChatClient, frame: dict[str, Any]) -> None:
    for req in ("a string req", 123456):
        reply = client.request({**frame, "req": req})
        assert_error(reply, "bad_request", req)
    still_serving(client)


def test_unknown_type(client: ChatClient) -> None:
    assert_error(client.request({"type": "dance", "req": "u1"}), "unknown_type", "u1")
    assert_error(client.request({"type": "dance", "req": 2}), "unknown_type", 2)
    still_serving(client)


def test_req_is_echoed_exactly(client: ChatClient) -> None:
    for req in ("x" * 64, "", "ünï ☃", 0, -5, 2**53):
        assert client.request({"type": "ping", "req": req}) == {"type": "pong", "req": req}
    reply = client.request({"type": "send", "room": ROOM, "text": "hi", "req": "s-1"})
    assert reply["type"] == "ok"
    assert reply["req"] == "s-1"


@pytest.mark.parametrize("req", ["x" * 65, 1.5, [1], {"a": 1}, True])
def test_bad_req_is_bad_request(client: ChatClient, req: Any) -> None:
    client.send({"type": "ping", "req": req})
    assert_error(client.next_frame(), "bad_request")
    still_serving(client)


def test_no_req_no_req_in_reply(client: ChatClient) -> None:
    client.send({"type": "ping"})
    assert client.next_frame() == {"type": "pong"}


def test_crlf_and_blank_lines_are_accepted(client: ChatClient) -> None:
    client.send_raw(b"\n\r\n   \n\t\r\n" + b'{"type":"ping","req":1}\r\n' + b"\n")
    assert client.next_frame() == {"type": "pong", "req": 1}
    assert client.sync() == []  # the blank lines caused no error


def test_frames_may_arrive_in_pieces_and_together(client: ChatClient) -> None:
    for byte in b'{"type":"ping","req":"slow"}\n':
        client.send_raw(bytes([byte]))
    assert client.next_frame() == {"type": "pong", "req": "slow"}
    client.send_raw(b'{"type":"ping","req":1}\n{"type":"ping","req":2}\n{"type":"ping","req":3}\n')
    assert [client.next_frame()["req"] for _ in range(3)] == [1, 2, 3]


def _ping_of_size(size: int) -> bytes:
    """A valid ping frame exactly ``size`` bytes long, newline included."""
    head, tail = b'{"type":"ping","req":"big"', b"}\n"
    return head + b" " * (size - len(head) - len(tail)) + tail


def test_a_frame_of_exactly_the_limit_is_accepted(client: ChatClient) -> None:
    frame = _ping_of_size(MAX_FRAME)
    assert len(frame) == MAX_FRAME
    client.send_raw(frame)
    assert client.next_frame() == {"type": "pong", "req": "big"}


def test_frame_too_large_then_bye_and_close(server: ServerProcess, client: ChatClient) -> None:
    client.send_raw(_ping_of_size(MAX_FRAME + 1))
    before_bye = client.expect_bye("frame_too_large")
    assert len(before_bye) == 1
    assert_error(before_bye[0], "frame_too_large")
    # Also without any newline at all, and before login.
    fresh = server.connect()
    fresh.send_raw(b"{" + b" " * (MAX_FRAME * 3))
    (error,) = fresh.expect_bye("frame_too_large")
    assert_error(error, "frame_too_large")


def test_ten_bad_frames_are_tolerated_eleven_are_not(client: ChatClient) -> None:
    for _ in range(10):
        client.send_raw(b"not json\n")
    errors = [client.next_frame() for _ in range(10)]
    assert {e["code"] for e in errors} == {"bad_frame"}
    still_serving(client)  # a good frame resets the count

    bad = [b"not json\n", b'{"type":"nope"}\n', b'{"type":"send"}\n', b"[]\n"]
    client.send_raw(b"".join(bad[n % 4] for n in range(11)))
    before_bye = client.expect_bye("too_many_errors")
    assert [e["type"] for e in before_bye] == ["error"] * 11
    assert [e["code"] for e in before_bye[:4]] == [
        "bad_frame",
        "unknown_type",
        "bad_request",
        "bad_frame",
    ]


def test_text_rules(client: ChatClient) -> None:
    def send(text: str) -> dict[str, Any]:
        return client.request({"type": "send", "room": ROOM, "text": text})

    for empty in ("", " ", "\n\t  \n"):
        assert_error(send(empty), "empty_text")
    assert_error(send("x" * (MAX_TEXT + 1)), "text_too_long")
    assert_error(send("☃" * (MAX_TEXT + 1)), "text_too_long")
    for control in ("\x00", "a\x07b", "esc\x1b[31m", "\x1f", "cr\rlf"):
        assert_error(send(control), "bad_request")

    accepted = ["x" * MAX_TEXT, "☃" * MAX_TEXT, "🎉" * MAX_TEXT, "line\nbreak\tand tab", " pad "]
    for text in accepted:
        reply = send(text)
        assert reply["type"] == "ok", (text, reply)
        assert client.expect("message", id=reply["id"])["text"] == text


def test_server_frames_may_exceed_the_clients_frame_limit(client: ChatClient) -> None:
    texts = [f"{n:03} " + "y" * (MAX_TEXT - 4) for n in range(30)]
    for text in texts:
        send_room(client, ROOM, text)
    reply = client.request({"type": "history", "room": ROOM, "limit": 30})
    assert len(json.dumps(reply)) > 3 * MAX_FRAME
    assert [m["text"] for m in reply["messages"]] == texts


def test_errors_do_not_end_the_connection(client: ChatClient) -> None:
    assert_error(client.request({"type": "dance"}), "unknown_type")
    assert_error(client.request({"type": "who", "room": "errors-absent"}), "no_such_room")
    message_id = send_room(client, ROOM, "still here")
    assert client.expect("message", id=message_id)["text"] == "still here"
