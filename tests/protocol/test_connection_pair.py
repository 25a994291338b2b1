"""A ClientConnection and a ServerConnection joined by an in-memory link (after h11's
``ConnectionPair``): a whole session, with no sockets and no threads."""

from __future__ import annotations

import pytest

from chatsecure.protocol import (
    DEFAULT_MAX_SERVER_FRAME_BYTES,
    Bye,
    ByeReason,
    ClientConnection,
    ClientPing,
    ClientPong,
    Create,
    Delete,
    Deleted,
    Edit,
    Edited,
    ErrorCode,
    Hello,
    HistoryReply,
    Invite,
    Join,
    Joined,
    Kick,
    Kicked,
    Login,
    Logout,
    MarkRead,
    Message,
    Ok,
    ReadMarker,
    RemoteProtocolError,
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
    UnknownFrame,
    Violation,
    Welcome,
    encode,
)


class ConnectionPair:
    """Moves bytes between the two ends, optionally one byte at a time."""

    def __init__(self, bytewise: bool = False) -> None:
        self.client = ClientConnection()
        self.server = ServerConnection()
        self.bytewise = bytewise

    def _chunks(self, data: bytes) -> list[bytes]:
        return [data[i : i + 1] for i in range(len(data))] if self.bytewise else [data]

    def to_server(self, request: Request) -> list[Request | Violation]:
        found: list[Request | Violation] = []
        for chunk in self._chunks(self.client.send(request)):
            self.server.receive_data(chunk)
            while (event := self.server.next_event()) is not None:
                found.append(event)
        return found

    def to_client(self, *frames: ServerFrame) -> list[ServerFrame | UnknownFrame]:
        found: list[ServerFrame | UnknownFrame] = []
        for frame in frames:
            for chunk in self._chunks(self.server.send(frame)):
                self.client.receive_data(chunk)
                while (event := self.client.next_event()) is not None:
                    found.append(event)
        return found


@pytest.mark.parametrize("bytewise", [False, True])
def test_a_whole_session(bytewise: bool) -> None:
    pair = ConnectionPair(bytewise)
    client = pair.client
    assert pair.to_client(Hello(max_frame_bytes=pair.server.max_frame_bytes)) == [
        Hello(max_frame_bytes=65536)
    ]

    login = Login(username="alice", password="pw", req=client.new_req())
    assert pair.to_server(login) == [login]
    pair.server.login_succeeded()
    welcome = Welcome(req=login.req, user="alice", rooms=("general",))
    history = HistoryReply(room="general", messages=(), more=False)
    assert pair.to_client(welcome, history) == [welcome, history]

    join = Join(room="Dev", req=client.new_req())
    assert pair.to_server(join) == [Join(room="dev", req=2)]
    assert pair.to_client(Joined(req=2, room="dev")) == [Joined(req=2, room="dev")]

    send = Send(text="hello, dev", room="dev", req=client.new_req())
    assert pair.to_server(send) == [send]
    message = Message(
        id=1, ts="2026-11-21T10:00:00.123Z", from_="alice", text=send.text, room="dev"
    )
    assert pair.to_client(Ok(req=3, id=1, ts=message.ts), message) == [
        Ok(req=3, id=1, ts=message.ts),
        message,
    ]

    assert pair.to_client(ServerPing(req="s1")) == [ServerPing(req="s1")]
    assert pair.to_server(ClientPong(req="s1")) == [ClientPong(req="s1")]
    assert pair.to_server(ClientPing(req=4)) == [ClientPing(req=4)]
    assert pair.to_client(ServerPong(req=4)) == [ServerPong(req=4)]

    assert pair.to_server(Logout()) == [Logout()]
    assert pair.to_client(Bye(reason=ByeReason.LOGOUT)) == [Bye(reason="logout")]


@pytest.mark.parametrize("bytewise", [False, True])
def test_a_session_with_the_additions(bytewise: bool) -> None:
    pair = ConnectionPair(bytewise)
    features = ("rooms2", "edit", "read")
    assert pair.to_client(Hello(max_frame_bytes=65536, features=features)) == [
        Hello(max_frame_bytes=65536, features=features)
    ]
    assert pair.to_server(Login(username="alice", password="pw", req=1)) != []
    pair.server.login_succeeded()
    history = HistoryReply(room="ops", messages=(), more=False, read_up_to=0)
    assert pair.to_client(history) == [history]

    create = Create(room="Ops", private=True, topic="on call", req=2)
    assert pair.to_server(create) == [Create(room="ops", private=True, topic="on call", req=2)]
    joined = Joined(req=2, room="ops", topic="on call", private=True, role="owner")
    assert pair.to_client(joined) == [joined]

    requests: list[Request] = [
        Invite(room="ops", user="bob", req=3),
        SetTopic(room="ops", topic="", req=4),
        SetRole(room="ops", user="bob", role="moderator", req=5),
        Kick(room="ops", user="carol", reason="spam", ban=True, req=6),
        Edit(id=1, text="fixed", req=7),
        Delete(id=2, req=8),
        MarkRead(up_to=2, room="ops", req=9),
    ]
    for request in requests:
        assert pair.to_server(request) == [request]

    ts = "2026-11-21T10:00:00.123Z"
    frames: list[ServerFrame] = [
        Ok(req=7, edited_ts=ts),
        TopicChanged(room="ops", topic="", by="alice"),
        RoleChanged(room="ops", user="bob", role="moderator", by="alice"),
        Kicked(room="dev", by="bob", reason="off topic"),
        Edited(id=1, room="ops", text="fixed", edited_ts=ts, by="alice"),
        Deleted(id=2, room="ops", by="alice"),
        ReadMarker(up_to=2, room="ops"),
        Message(id=2, ts=ts, from_="alice", text=None, room="ops", deleted=True),
    ]
    assert pair.to_client(*frames) == frames


def test_a_rejected_request_comes_back_as_an_error_with_its_req() -> None:
    pair = ConnectionPair()
    [violation] = pair.to_server(Send(text="early", room="general", req=9))
    assert isinstance(violation, Violation)
    [error] = pair.to_client(violation.error)
    assert error == violation.error
    assert (error.code, error.req) == (ErrorCode.NOT_AUTHENTICATED, 9)


def test_new_req_counts_up() -> None:
    client = ClientConnection()
    assert [client.new_req() for _ in range(3)] == [1, 2, 3]


def test_client_accepts_big_frames_and_refuses_bigger_ones() -> None:
    assert DEFAULT_MAX_SERVER_FRAME_BYTES >= 8 * 1024 * 1024
    client = ClientConnection(max_frame_bytes=1024)
    big = Message(id=1, ts="t", from_="a", text="x" * 900, room="r")
    client.receive_data(encode(big))
    assert client.next_event() == big
    client.receive_data(b"x" * 1024)
    with pytest.raises(RemoteProtocolError):
        client.next_event()
