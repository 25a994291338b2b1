"""``ChatSession`` without a server: requests are recorded, replies are put on its queue.

Each test makes requests, answers them as the server would (or loses the connection),
and checks what goes on the wire and what the window is told to redraw.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chatsecure.client import session as session_module
from chatsecure.client.events import ConnectionLost, FrameArrived, LoggedIn, NetworkEvent
from chatsecure.client.network import Credentials, ServerAddress
from chatsecure.client.session import (
    ChatSession,
    CurrentChanged,
    ExportFailed,
    ExportFinished,
    ExportProgress,
    PasswordResult,
    Redraw,
    RoomChanged,
    SidebarChanged,
    Update,
)
from chatsecure.client.state import ChatState, Conversation, ConvKey
from chatsecure.client.trust import TrustStore
from chatsecure.protocol import (
    Error,
    ErrorCode,
    History,
    HistoryReply,
    Join,
    Joined,
    Leave,
    Message,
    Ok,
    Passwd,
    Request,
    Send,
    ServerFrame,
)

GENERAL = ConvKey.room("general")


def _alices_session() -> ChatSession:
    return ChatSession(
        ServerAddress("localhost", 5443), Credentials("alice", "irrelevant"), TrustStore()
    )


class RecordingNetwork:
    """Stands in for ``NetworkClient``: keeps each request; its ``req`` is its position."""

    def __init__(self) -> None:
        self.sent: list[Request] = []

    def start(self) -> None:
        pass

    def request(self, request: Request) -> int:
        self.sent.append(request)
        return len(self.sent)


class Offline:
    """A logged-in session whose network is a ``RecordingNetwork``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, rooms: tuple[str, ...]) -> None:
        self.network = RecordingNetwork()
        monkeypatch.setattr(session_module, "NetworkClient", lambda *_: self.network)
        self.session = _alices_session()
        self.session.start()
        self.receive(LoggedIn("alice", rooms, reconnected=False))

    @property
    def last_req(self) -> int:
        return len(self.network.sent)

    def receive(self, *events: NetworkEvent) -> list[Update]:
        for event in events:
            self.session.events.put(event)
        return list(self.session.poll())

    def answer(self, frame: ServerFrame) -> list[Update]:
        return self.receive(FrameArrived(frame))

    def lose(self, *unanswered: int) -> list[Update]:
        """The connection drops with these requests unanswered; only the settling updates."""
        updates = self.receive(ConnectionLost("reset", 1, 0.5, unanswered))
        return updates[:-1]  # the last is the status line

    @property
    def state(self) -> ChatState:
        assert self.session.state is not None
        return self.session.state

    def conv(self, key: ConvKey = GENERAL) -> Conversation:
        return self.state.conversations[key]

    def notices(self, key: ConvKey = GENERAL) -> list[str]:
        return [line.text for line in self.conv(key).lines if line.sender is None]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Offline:
    return Offline(monkeypatch, ("general",))


def _msg(id_: int, room: str | None = "general", to: str | None = None) -> Message:
    return Message(
        id=id_, ts="2026-11-21T10:00:00.000Z", from_="bob", text=f"m{id_}", room=room, to=to
    )


def _refusal(req: int, message: str = "no such room") -> Error:
    return Error(code=ErrorCode.NO_SUCH_ROOM, message=message, req=req)


def test_every_purpose_has_a_reply_handler(offline):
    assert set(offline.session._reply_handlers) == set(session_module._Purpose)


def test_join_sends_exactly_the_join_request_then_shows_the_room(offline):
    assert offline.session.join(" Dev ") is None
    assert offline.network.sent == [Join(room="dev")]
    dev = ConvKey.room("dev")
    updates = offline.answer(Joined(room="dev", req=offline.last_req))
    assert updates == [RoomChanged(dev), SidebarChanged(), CurrentChanged(dev)]
    assert offline.state.current == dev


def test_join_checks_the_name_and_the_login_first(offline):
    assert offline.session.join("Dev Ops") is not None
    assert offline.session.join("") is not None
    assert offline.network.sent == []
    assert _alices_session().join("dev") == "Not logged in."


def test_slash_join_sends_the_same_request(offline):
    assert offline.session.submit("/join Dev") is None
    assert offline.network.sent == [Join(room="dev")]


def test_a_refused_join_is_a_notice_in_the_current_conversation(offline):
    offline.session.join("nope")
    updates = offline.answer(_refusal(offline.last_req))
    assert updates == [Redraw(GENERAL)]
    assert offline.notices() == ["Cannot join: no such room."]


def test_sending_and_a_refused_send(offline):
    assert offline.session.submit("hello") is None
    assert offline.session.submit("/msg Bob hi") is None
    assert offline.network.sent == [
        Send(room="general", text="hello"),
        History(with_="Bob", before=None, limit=50),  # the new direct chat's latest page
        Send(to="Bob", text="hi"),
    ]
    assert offline.answer(Ok(req=1, id=7, ts="2026-11-21T10:00:00.000Z")) == []
    bob = ConvKey.direct("bob")
    assert offline.answer(_refusal(3, "text is too long")) == [Redraw(bob)]
    assert offline.notices(bob) == ["Not sent: text is too long."]


def test_leaving_removes_the_room_once_the_server_agrees(monkeypatch):
    offline = Offline(monkeypatch, ("general", "zeta"))
    assert offline.session.leave("general") is None
    assert offline.network.sent == [Leave(room="general")]
    assert GENERAL in offline.state.conversations
    updates = offline.answer(Ok(req=1))
    assert updates == [SidebarChanged(), CurrentChanged(ConvKey.room("zeta"))]
    assert GENERAL not in offline.state.conversations


def test_a_refused_leave(offline):
    offline.session.leave("general")
    assert offline.answer(_refusal(1, "not a member")) == [Redraw(GENERAL)]
    assert offline.notices() == ["Cannot leave: not a member."]


def test_loading_older_then_the_page_arrives(offline):
    assert offline.session.load_older()
    assert offline.network.sent == [History(room="general", before=None, limit=50)]
    assert offline.conv().loading_older
    assert not offline.session.load_older()  # one page at a time
    reply = HistoryReply(room="general", messages=(_msg(1), _msg(2)), more=True, req=1)
    assert offline.answer(reply) == [Redraw(GENERAL, older=2), SidebarChanged()]
    assert not offline.conv().loading_older
    assert offline.conv().has_older
    assert offline.session.load_older()
    assert offline.network.sent[-1] == History(room="general", before=1, limit=50)


def test_a_refused_or_lost_older_page_may_be_asked_again(offline):
    offline.session.load_older()
    assert offline.answer(_refusal(1, "server error")) == [Redraw(GENERAL)]
    assert offline.notices() == ["Refused: server error."]
    assert not offline.conv().loading_older
    offline.session.load_older()
    assert offline.lose(2) == []
    assert not offline.conv().loading_older


def test_a_reconnect_fills_each_gap_page_by_page(monkeypatch):
    offline = Offline(monkeypatch, ("general", "empty"))
    offline.answer(_msg(5))
    offline.session.open_direct("Bob")
    offline.answer(HistoryReply(with_="bob", messages=(_msg(3, None, "alice"),), more=False, req=1))
    offline.receive(LoggedIn("alice", ("general", "empty"), reconnected=True))
    assert offline.network.sent[1:] == [
        History(room="general", after=5, limit=500),
        History(room="empty", before=None, limit=500),  # nothing seen: back from the newest
        History(with_="Bob", after=3, limit=500),
    ]
    forward = HistoryReply(room="general", messages=(_msg(6), _msg(7)), more=True, req=2)
    offline.answer(forward)
    assert offline.network.sent[-1] == History(room="general", after=7, limit=500)
    backward = HistoryReply(room="empty", messages=(_msg(9, "empty"),), more=True, req=3)
    offline.answer(backward)
    assert offline.network.sent[-1] == History(room="empty", before=9, limit=500)
    direct = HistoryReply(with_="bob", messages=(_msg(8, None, "alice"),), more=True, req=4)
    offline.answer(direct)
    assert offline.network.sent[-1] == History(with_="bob", after=8, limit=500)
    sent = len(offline.network.sent)
    offline.answer(HistoryReply(room="general", messages=(_msg(10),), more=False, req=5))
    assert len(offline.network.sent) == sent  # the last page: nothing more to ask
    assert [line.id for line in offline.conv().lines] == [5, 6, 7, 10]
    assert offline.conv().unread == 4  # what was missed counts as unread


def test_a_refused_gap_page(offline):
    offline.receive(LoggedIn("alice", ("general",), reconnected=True))
    assert offline.answer(_refusal(1, "server error")) == [Redraw(GENERAL)]
    assert offline.notices() == ["Refused: server error."]


def test_export_fetches_every_page_then_writes_the_file(offline, tmp_path: Path):
    path = tmp_path / "general.txt"
    assert offline.session.start_export(path, "txt") is None
    assert offline.session.start_export(path, "txt") == "An export is already running."
    assert offline.network.sent == [History(room="general", before=None, limit=500)]
    newer = HistoryReply(room="general", messages=(_msg(3), _msg(4)), more=True, req=1)
    assert offline.answer(newer) == [ExportProgress(2)]
    assert offline.network.sent[-1] == History(room="general", before=3, limit=500)
    older = HistoryReply(room="general", messages=(_msg(1),), more=False, req=2)
    assert offline.answer(older) == [ExportFinished(path, 3)]
    text = path.read_text()
    assert text.index("m1") < text.index("m3") < text.index("m4")


def test_export_refused_lost_or_cancelled(offline, tmp_path: Path):
    path = tmp_path / "general.txt"
    offline.session.start_export(path, "txt")
    refused = offline.answer(_refusal(1, "not a member"))
    assert refused == [ExportFailed("The server refused the export: not a member.")]
    offline.session.start_export(path, "txt")
    lost = offline.lose(2)
    assert lost == [ExportFailed("The connection was lost; nothing was saved.")]
    offline.session.start_export(path, "txt")
    offline.session.cancel_export()
    late = offline.answer(HistoryReply(room="general", messages=(_msg(1),), more=True, req=3))
    assert not [u for u in late if isinstance(u, ExportProgress | ExportFinished)]
    assert len(offline.network.sent) == 3
    assert not path.exists()


def test_password_change_results(offline):
    offline.session.change_password("old-secret", "new-secret")
    assert offline.network.sent == [Passwd(old="old-secret", new="new-secret")]
    refused = offline.answer(Error(code=ErrorCode.WEAK_PASSWORD, message="too short", req=1))
    assert refused == [PasswordResult(False, "The password was not changed: too short.")]
    offline.session.change_password("old-secret", "new-secret")
    assert offline.answer(Ok(req=2)) == [PasswordResult(True, "Your password was changed.")]
    offline.session.change_password("old-secret", "new-secret")
    assert offline.lose(3) == [PasswordResult(False, "The connection was lost; try again.")]


def test_a_send_lost_with_the_connection_says_so(offline):
    offline.session.submit("hello")
    offline.session.join("dev")
    assert offline.lose(1, 2) == [Redraw(GENERAL)]
    assert offline.notices() == [
        "The connection dropped before the server confirmed your last message; "
        "if it was stored, it appears once reconnected."
    ]
