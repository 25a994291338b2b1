"""ServerConnection: the state table, violations, the bad-frame counter and send rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from chatsecure.protocol import (
    Bye,
    ByeReason,
    ClientPing,
    ClientPong,
    ConnectionState,
    Create,
    Delete,
    Deleted,
    Edit,
    Edited,
    Error,
    ErrorCode,
    Invite,
    Invited,
    Join,
    Kick,
    Kicked,
    LocalProtocolError,
    Login,
    MarkRead,
    Member,
    Message,
    Ok,
    ReadMarker,
    Request,
    RoleChanged,
    Send,
    ServerConnection,
    ServerFrame,
    ServerPing,
    ServerPong,
    SetRole,
    SetTopic,
    TopicChanged,
    Unban,
    Violation,
    Welcome,
    encode,
)

LOGIN = b'{"type":"login","username":"alice","password":"pw","req":1}\n'
GARBAGE = b"garbage\n"


def frame(**fields: object) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def events(connection: ServerConnection, data: bytes) -> list[Request | Violation]:
    connection.receive_data(data)
    found = []
    while (event := connection.next_event()) is not None:
        found.append(event)
    return found


def events_bytewise(connection: ServerConnection, data: bytes) -> list[Request | Violation]:
    found = []
    for byte in data:
        found += events(connection, bytes([byte]))
    return found


def logged_in(**limits: int) -> ServerConnection:
    connection = ServerConnection(**limits)
    assert events(connection, LOGIN) == [Login(username="alice", password="pw", req=1)]
    connection.login_succeeded()
    return connection


def violation(
    code: ErrorCode, req: str | int | None = None, close: ByeReason | None = None
) -> Violation:
    """The expected violation; ``summarized`` blanks the messages so they compare equal."""
    return Violation(Error(code=code, message="", req=req), close)


def summarized(found: list[Request | Violation]) -> list[Request | Violation]:
    return [
        replace(event, error=replace(event.error, message=""))
        if isinstance(event, Violation)
        else event
        for event in found
    ]


def test_hello_announces_the_frame_cap() -> None:
    connection = ServerConnection(max_frame_bytes=1000)
    assert json.loads(connection.hello()) == {
        "type": "hello",
        "server": "chatsecure",
        "version": 1,
        "max_frame_bytes": 1000,
    }


@pytest.mark.parametrize("feed", [events, events_bytewise])
def test_before_login_only_login_ping_and_pong(
    feed: Callable[[ServerConnection, bytes], list[Request | Violation]],
) -> None:
    connection = ServerConnection()
    data = (
        frame(type="ping", req=1)
        + frame(type="pong", req=2)
        + frame(type="send", room="a", text="hi", req=3)
        + frame(type="send", req=4)  # fields are not even looked at before login
        + frame(type="logout")
        + frame(type="nope", req=5)
        + LOGIN
    )
    assert summarized(feed(connection, data)) == [
        ClientPing(req=1),
        ClientPong(req=2),
        violation(ErrorCode.NOT_AUTHENTICATED, req=3),
        violation(ErrorCode.NOT_AUTHENTICATED, req=4),
        violation(ErrorCode.NOT_AUTHENTICATED),
        violation(ErrorCode.UNKNOWN_TYPE, req=5),
        Login(username="alice", password="pw", req=1),
    ]
    assert connection.state is ConnectionState.AWAITING_LOGIN


def test_after_login_everything_but_login() -> None:
    connection = logged_in()
    assert connection.state is ConnectionState.AUTHENTICATED
    assert summarized(events(connection, frame(type="join", room="Dev", req=2) + LOGIN)) == [
        Join(room="dev", req=2),
        violation(ErrorCode.ALREADY_AUTHENTICATED, req=1),
    ]


# The requests of the contract's additions, each as sent and as parsed.
ADDITIONS: list[tuple[bytes, Request]] = [
    (
        frame(type="create", room="Ops", private=True, req=1),
        Create(room="ops", private=True, req=1),
    ),
    (frame(type="invite", room="ops", user="bob", req=2), Invite(room="ops", user="bob", req=2)),
    (frame(type="topic", room="ops", topic="t", req=3), SetTopic(room="ops", topic="t", req=3)),
    (
        frame(type="role", room="ops", user="bob", role="member", req=4),
        SetRole(room="ops", user="bob", role="member", req=4),
    ),
    (frame(type="kick", room="ops", user="bob", req=5), Kick(room="ops", user="bob", req=5)),
    (
        frame(type="ban", room="ops", user="bob", req=6),
        Kick(room="ops", user="bob", ban=True, req=6),
    ),
    (frame(type="unban", room="ops", user="bob", req=7), Unban(room="ops", user="bob", req=7)),
    (frame(type="edit", id=9, text="x", req=8), Edit(id=9, text="x", req=8)),
    (frame(type="delete", id=9, req=9), Delete(id=9, req=9)),
    (frame(type="read", room="ops", up_to=9, req=10), MarkRead(up_to=9, room="ops", req=10)),
]


@pytest.mark.parametrize("feed", [events, events_bytewise])
def test_the_additions_are_refused_before_login(
    feed: Callable[[ServerConnection, bytes], list[Request | Violation]],
) -> None:
    connection = ServerConnection()
    found = summarized(feed(connection, b"".join(line for line, _ in ADDITIONS)))
    assert found == [
        violation(ErrorCode.NOT_AUTHENTICATED, req=request.req) for _, request in ADDITIONS
    ]


@pytest.mark.parametrize("feed", [events, events_bytewise])
def test_the_additions_are_accepted_after_login(
    feed: Callable[[ServerConnection, bytes], list[Request | Violation]],
) -> None:
    connection = logged_in()
    assert feed(connection, b"".join(line for line, _ in ADDITIONS)) == [
        request for _, request in ADDITIONS
    ]


def test_an_edit_is_held_to_the_text_limit_like_a_send() -> None:
    connection = logged_in(max_text_chars=5)
    data = frame(type="edit", id=1, text="toolong", req="a") + frame(
        type="edit", id=1, text=" ", req="b"
    )
    assert summarized(events(connection, data)) == [
        violation(ErrorCode.TEXT_TOO_LONG, req="a"),
        violation(ErrorCode.EMPTY_TEXT, req="b"),
    ]


def test_hello_announces_the_features() -> None:
    connection = ServerConnection()
    assert json.loads(connection.hello(features=("rooms2", "edit", "read")))["features"] == [
        "rooms2",
        "edit",
        "read",
    ]


ADDITION_FRAMES: list[ServerFrame] = [
    Invited(room="ops", by="alice"),
    TopicChanged(room="ops", topic="t", by="alice"),
    RoleChanged(room="ops", user="bob", role="moderator", by="alice"),
    Kicked(room="ops", by="alice", ban=True),
    Edited(id=1, text="x", edited_ts="t", by="alice", room="ops"),
    Deleted(id=1, by="alice", to="bob"),
    ReadMarker(up_to=1, room="ops"),
]


@pytest.mark.parametrize("frame_", ADDITION_FRAMES, ids=lambda f: f.TYPE)
def test_the_additions_frames_are_sent_only_after_login(frame_: ServerFrame) -> None:
    with pytest.raises(LocalProtocolError):
        ServerConnection().send(frame_)
    assert logged_in().send(frame_) == encode(frame_)


def test_field_errors_echo_req_and_keep_the_connection() -> None:
    connection = logged_in(max_text_chars=5)
    data = (
        frame(type="send", room="a", text="toolong", req="a")
        + frame(type="send", room="a", text=" ", req="b")
        + frame(type="send", room="a", text="ok", req="c")
    )
    assert summarized(events(connection, data)) == [
        violation(ErrorCode.TEXT_TOO_LONG, req="a"),
        violation(ErrorCode.EMPTY_TEXT, req="b"),
        Send(text="ok", room="a", req="c"),
    ]
    assert connection.state is ConnectionState.AUTHENTICATED


def test_frame_too_large_closes_and_reads_nothing_more() -> None:
    connection = ServerConnection(max_frame_bytes=64)
    data = frame(type="ping", req=1) + b"x" * 100 + b"\n" + frame(type="ping", req=2)
    assert summarized(events(connection, data)) == [
        ClientPing(req=1),
        violation(ErrorCode.FRAME_TOO_LARGE, close=ByeReason.FRAME_TOO_LARGE),
    ]
    assert connection.state is ConnectionState.CLOSING
    assert events(connection, frame(type="ping")) == []
    assert connection.buffered_bytes == 0


def test_frame_too_large_is_found_before_its_newline() -> None:
    connection = ServerConnection(max_frame_bytes=64)
    assert summarized(events(connection, b"{" * 64)) == [
        violation(ErrorCode.FRAME_TOO_LARGE, close=ByeReason.FRAME_TOO_LARGE)
    ]


@pytest.mark.parametrize(
    "bad",
    [
        GARBAGE,
        frame(type="nope"),
        frame(type="join"),
        frame(type="send", room="a", text=""),
        frame(type="send", room="a", text="x" * 5000),
        frame(type="send", room="a"),  # not_authenticated before login
    ],
)
def test_eleventh_bad_frame_in_a_row_closes(bad: bytes) -> None:
    connection = ServerConnection()
    found = events(connection, bad * 10)
    assert len(found) == 10
    assert all(isinstance(v, Violation) and v.close is None for v in found)
    [last] = events(connection, bad + frame(type="ping"))
    assert isinstance(last, Violation)
    assert last.close is ByeReason.TOO_MANY_ERRORS
    assert connection.state is ConnectionState.CLOSING


def test_already_authenticated_counts_as_bad() -> None:
    connection = logged_in()
    found = events(connection, LOGIN * 11)
    assert [v.close for v in found if isinstance(v, Violation)] == [None] * 10 + [
        ByeReason.TOO_MANY_ERRORS
    ]


def test_a_valid_request_resets_the_count() -> None:
    connection = ServerConnection()
    data = (GARBAGE * 10 + frame(type="ping")) * 3 + GARBAGE * 10
    found = events(connection, data)
    assert len(found) == 43
    assert all(not isinstance(v, Violation) or v.close is None for v in found)
    assert connection.state is ConnectionState.AWAITING_LOGIN


def test_blank_lines_are_not_bad_frames() -> None:
    connection = ServerConnection()
    assert events(connection, b"\n\r\n" * 50 + frame(type="ping")) == [ClientPing()]


def test_closing_allows_only_the_error_and_bye() -> None:
    connection = ServerConnection(max_frame_bytes=16)
    [event] = events(connection, b"x" * 20)
    assert isinstance(event, Violation)
    assert event.close is not None
    assert json.loads(connection.send(event.error))["code"] == "frame_too_large"
    with pytest.raises(LocalProtocolError):
        connection.send(ServerPong())
    assert json.loads(connection.send(Bye(reason=event.close))) == {
        "type": "bye",
        "reason": "frame_too_large",
    }
    assert connection.state is ConnectionState.CLOSED
    with pytest.raises(LocalProtocolError):
        connection.send(Bye(reason=ByeReason.SHUTDOWN))


def test_account_frames_cannot_leak_before_login() -> None:
    connection = ServerConnection()
    message = Message(id=1, ts="t", from_="a", text="x", room="r")
    for frame_ in (
        message,
        Welcome(user="a", rooms=()),
        Ok(req=1),
        Member(room="r", user="a", event="left"),
    ):
        with pytest.raises(LocalProtocolError):
            connection.send(frame_)
    for allowed in (
        ServerPong(req=1),
        ServerPing(),
        Error(code=ErrorCode.AUTH_FAILED, message="m", req=1),
    ):
        connection.send(allowed)


def test_shared_encoding_is_passed_through_after_the_state_check() -> None:
    message = Message(id=1, ts="t", from_="a", text="x", room="r")
    shared = encode(message)
    assert logged_in().send(message, encoded=shared) is shared
    with pytest.raises(LocalProtocolError):
        ServerConnection().send(message, encoded=shared)


def test_bye_after_logout_closes() -> None:
    connection = logged_in()
    assert events(connection, frame(type="logout")) != []
    connection.send(Bye(reason=ByeReason.LOGOUT))
    assert connection.state is ConnectionState.CLOSED
    assert events(connection, frame(type="ping")) == []


def test_close_stops_everything() -> None:
    connection = ServerConnection()
    connection.receive_data(frame(type="ping"))
    connection.close()
    assert connection.next_event() is None
    assert connection.buffered_bytes == 0


def test_login_succeeded_only_once() -> None:
    connection = logged_in()
    with pytest.raises(LocalProtocolError):
        connection.login_succeeded()
