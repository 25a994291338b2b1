"""The client's side of rooms2, edit and read, without a server or a window.

Frames are fed into a ``ChatSession`` whose network only records requests (the
``Offline`` harness of ``test_session``); the clock is a number the test moves.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chatsecure.client import session as session_module
from chatsecure.client.events import ConnectionLost, FrameArrived, LoggedIn
from chatsecure.client.network import Credentials, ServerAddress
from chatsecure.client.notify import BODY_CHARS, Notifier, shorten
from chatsecure.client.profile import ClientSettings, load_client_settings, save_client_settings
from chatsecure.client.session import (
    Alert,
    ChatSession,
    CurrentChanged,
    InviteReceived,
    Mentioned,
    Notice,
    Redraw,
    RoomChanged,
    Update,
)
from chatsecure.client.state import ChatState, ConvKey
from chatsecure.client.trust import TrustStore
from chatsecure.client.validation import topic_error
from chatsecure.protocol import (
    Create,
    Delete,
    Deleted,
    Edit,
    Edited,
    Error,
    HistoryReply,
    Invite,
    Invited,
    Joined,
    Kick,
    Kicked,
    ListRooms,
    MarkRead,
    MemberInfo,
    Message,
    Ok,
    ReadMarker,
    RoleChanged,
    RoomInfo,
    RoomsReply,
    ServerFrame,
    SetTopic,
    TopicChanged,
    WhoReply,
)
from tests.client.test_session import RecordingNetwork

GENERAL = ConvKey.room("general")
DEV = ConvKey.room("dev")
TS = "2026-11-21T10:00:00.000Z"


def _msg(id_: int, sender: str = "bob", room: str | None = "general", text: str | None = None,
         **extra: object) -> Message:  # fmt: skip
    return Message(id=id_, ts=TS, from_=sender, text=text or f"m{id_}", room=room, **extra)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Session:
    """A logged-in session on a recording network, with the additions announced."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, rooms: tuple[str, ...] = ("general", "dev"),
                 features: tuple[str, ...] = ("rooms2", "edit", "read")) -> None:  # fmt: skip
        self.network = RecordingNetwork()
        monkeypatch.setattr(session_module, "NetworkClient", lambda *_: self.network)
        self.clock = Clock()
        self.session = ChatSession(
            ServerAddress("localhost", 5443), Credentials("alice", "x"), TrustStore(),
            clock=self.clock,
        )  # fmt: skip
        self.session.start()
        self.updates = self.receive(LoggedIn("alice", rooms, reconnected=False, features=features))
        self.session.select(GENERAL)  # the first room is dev, by name; start in general

    def receive(self, *frames: ServerFrame | LoggedIn | ConnectionLost) -> list[Update]:
        for frame in frames:
            if isinstance(frame, LoggedIn | ConnectionLost):
                self.session.events.put(frame)
            else:
                self.session.events.put(FrameArrived(frame))
        return list(self.session.poll())

    def sent(self, kind: type) -> list[object]:
        return [r for r in self.network.sent if isinstance(r, kind)]

    def reply(self, frame_type: type, **fields: object) -> list[Update]:
        """Answer the last request with a frame of ``frame_type``."""
        return self.receive(frame_type(req=len(self.network.sent), **fields))

    @property
    def state(self) -> ChatState:
        assert self.session.state is not None
        return self.session.state


@pytest.fixture
def alice(monkeypatch: pytest.MonkeyPatch) -> Session:
    return Session(monkeypatch)


def history(room: str, *messages: Message, read_up_to: int | None = 0) -> HistoryReply:
    return HistoryReply(room=room, messages=messages, more=False, read_up_to=read_up_to)


# -- read markers -----------------------------------------------------------------------


def test_unread_counts_come_from_the_markers_and_reading_is_sent(alice: Session) -> None:
    assert alice.state.current == GENERAL
    alice.receive(
        history("general", _msg(1), _msg(2), read_up_to=1),
        history("dev", _msg(3, room="dev"), _msg(4, room="dev"), _msg(5, "alice", "dev"),
                read_up_to=0),
    )  # fmt: skip
    dev = alice.state.conversations[DEV]
    assert dev.unread == 2  # one's own message is never unread
    # general is on screen in a focused window: message 2 is read, and the marker is sent.
    assert alice.state.conversations[GENERAL].unread == 0
    assert alice.sent(MarkRead) == [MarkRead(up_to=2, room="general")]
    alice.clock.now += 0.1
    alice.session.select(DEV)
    assert dev.unread == 0
    assert alice.sent(MarkRead)[-1] == MarkRead(up_to=5, room="dev")


def test_reads_are_debounced_and_only_move_forward(alice: Session) -> None:
    alice.receive(history("general", _msg(1), read_up_to=1))
    assert alice.sent(MarkRead) == []  # the server already has 1
    alice.receive(_msg(2))
    assert [r.up_to for r in alice.sent(MarkRead)] == [2]  # type: ignore[attr-defined]
    alice.clock.now += 0.3
    alice.receive(_msg(3))
    alice.receive(_msg(4))
    assert len(alice.sent(MarkRead)) == 1  # within the second: held back
    alice.clock.now += 0.8
    alice.receive()
    assert [r.up_to for r in alice.sent(MarkRead)] == [2, 4]  # type: ignore[attr-defined]
    alice.clock.now += 5
    alice.receive(ReadMarker(up_to=3, room="general"))  # another device, behind us
    alice.receive()
    assert len(alice.sent(MarkRead)) == 2


def test_an_unfocused_window_leaves_messages_unread_until_it_is_focused(alice: Session) -> None:
    alice.receive(history("general", _msg(1), read_up_to=1))
    alice.session.set_focused(False)
    alice.receive(_msg(2), _msg(3))
    general = alice.state.conversations[GENERAL]
    assert general.unread == 2
    assert alice.sent(MarkRead) == []
    alice.session.set_focused(True)
    assert general.unread == 0
    assert alice.sent(MarkRead)[-1].up_to == 3  # type: ignore[attr-defined]


def test_a_read_frame_from_another_device_clears_the_count(alice: Session) -> None:
    alice.receive(history("dev", _msg(3, room="dev"), _msg(4, room="dev"), read_up_to=0))
    dev = alice.state.conversations[DEV]
    assert dev.unread == 2
    alice.receive(ReadMarker(up_to=3, room="dev"))
    assert dev.unread == 1
    alice.receive(ReadMarker(up_to=4, room="dev"))
    assert dev.unread == 0
    assert alice.sent(MarkRead) == []  # the server knows; nothing to send back


def test_the_divider_marks_the_first_unread_message(alice: Session) -> None:
    alice.receive(history("dev", _msg(3, room="dev"), _msg(4, room="dev"), _msg(6, room="dev"),
                          read_up_to=3))  # fmt: skip
    conv = alice.state.select(DEV)
    assert conv.divider_id == 4
    alice.state.select(GENERAL)
    assert alice.state.select(DEV).divider_id is None  # all read now


def test_without_the_read_feature_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    old = Session(monkeypatch, features=())
    old.receive(HistoryReply(room="dev", messages=(_msg(3, room="dev"),), more=False))
    assert old.state.conversations[DEV].unread == 0  # the login page is not unread
    old.receive(_msg(4, room="dev"))
    assert old.state.conversations[DEV].unread == 1
    old.session.select(DEV)
    assert old.sent(MarkRead) == []


# -- mentions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mentioned"),
    [
        ("hi @alice", True),
        ("@ALICE: look", True),
        ("ping @alice.", True),
        ("(@alice)", True),
        ("@alicex", False),
        ("@alice.b is someone else", False),
        ("mail alice@alice.org", False),
        ("alice without at", False),
        ("@alice-2", False),
    ],
)
def test_mentions_are_whole_words_without_regard_to_case(text: str, mentioned: bool) -> None:
    assert ChatState("Alice").mentions_me(text) is mentioned


def test_mentions_are_counted_apart_and_reported(alice: Session) -> None:
    updates = alice.receive(_msg(7, room="dev", text="@alice can you look?"), _msg(8, room="dev"))
    dev = alice.state.conversations[DEV]
    assert (dev.unread, dev.mentions) == (2, 1)
    assert [u for u in updates if isinstance(u, Mentioned)] == [
        Mentioned(DEV, "bob", "#dev", "@alice can you look?")
    ]
    own = alice.receive(_msg(9, "alice", "dev", text="note to @alice"))
    assert not [u for u in own if isinstance(u, Mentioned)]
    alice.receive(ReadMarker(up_to=10, room="dev"))  # read elsewhere: no longer counted
    assert (dev.unread, dev.mentions) == (0, 0)


def test_the_notifier_runs_notify_send_with_an_argument_list() -> None:
    runs: list[list[str]] = []
    notifier = Notifier(runner=runs.append,
                        which=lambda name: f"/usr/bin/{name}")  # fmt: skip
    assert notifier.notify("bob mentioned you in #dev", "x" * 1000 + "; rm -rf ~")
    [args] = runs
    assert args[:3] == ["/usr/bin/notify-send", "--app-name=chatsecure", "--"]
    assert args[3] == "bob mentioned you in #dev"
    assert len(args[4]) == BODY_CHARS
    assert args[4].endswith("…")
    assert not Notifier(runner=runs.append, which=lambda _name: None).notify("t", "b")
    assert shorten("two\nlines", 20) == "two lines"


def test_settings_persist_privately(tmp_path: Path) -> None:
    assert load_client_settings(tmp_path) == ClientSettings(notify_mentions=True)
    save_client_settings(ClientSettings(notify_mentions=False), tmp_path)
    assert load_client_settings(tmp_path) == ClientSettings(notify_mentions=False)
    mode = stat.S_IMODE(os.stat(tmp_path / "settings.json").st_mode)
    assert mode == 0o600
    (tmp_path / "settings.json").write_text("{not json")
    assert load_client_settings(tmp_path) == ClientSettings()


# -- edits and deletions ----------------------------------------------------------------


def test_edits_and_deletions_change_the_lines(alice: Session) -> None:
    alice.receive(history("general", _msg(1, "alice"), _msg(2), _msg(3, "alice"), read_up_to=3))
    general = alice.state.conversations[GENERAL]
    last = alice.session.last_own_message()
    assert last is not None
    assert last.id == 3
    assert alice.session.edit(3, "fixed") is None
    assert alice.network.sent[-1] == Edit(id=3, text="fixed")
    assert alice.session.edit(3, "   ") is not None  # validated like a message
    updates = alice.receive(Edited(id=3, text="fixed", edited_ts=TS, by="alice", room="general"))
    assert Redraw(GENERAL) in updates
    assert general.lines[2].text == "fixed"
    assert general.lines[2].edited
    alice.session.delete(3)
    assert alice.sent(Delete) == [Delete(id=3)]
    alice.receive(Deleted(id=3, by="alice", room="general"))
    assert general.lines[2].deleted
    assert general.lines[2].text == ""
    last = alice.session.last_own_message()
    assert last is not None
    assert last.id == 1
    assert alice.receive(Edited(id=999, text="?", edited_ts=TS, by="x", room="general")) == []


def test_history_shows_edited_and_deleted_messages(alice: Session) -> None:
    alice.receive(history("dev", _msg(4, room="dev", edited_ts=TS),
                          Message(id=5, ts=TS, from_="bob", text=None, room="dev", deleted=True),
                          read_up_to=0))  # fmt: skip
    dev = alice.state.conversations[DEV]
    assert dev.lines[0].edited
    assert not dev.lines[0].deleted
    assert dev.lines[1].deleted
    assert dev.lines[1].text == ""
    assert dev.unread == 1  # a deleted message is not waiting to be read


def test_who_may_delete_what(alice: Session) -> None:
    alice.receive(history("dev", _msg(4, room="dev"), _msg(5, "alice", "dev"), read_up_to=5))
    alice.session.select(DEV)
    dev = alice.state.conversations[DEV]
    others, own = dev.lines
    assert alice.session.can_delete(own)
    assert alice.session.can_edit(own)
    assert not alice.session.can_delete(others)
    assert not alice.session.can_edit(others)
    alice.receive(RoleChanged(room="dev", user="alice", role="moderator", by="carol"))
    assert alice.session.can_delete(others)
    assert not alice.session.can_edit(others)
    alice.session.delete(4)
    alice.reply(Error, code="not_allowed", message="not your message")
    assert "not allowed" in dev.lines[-1].text


# -- rooms2 ------------------------------------------------------------------------------


def test_create_a_private_room(alice: Session) -> None:
    assert alice.session.create_room("Ops", private=True, topic="on call") is None
    assert alice.network.sent[-1] == Create(room="ops", private=True, topic="on call")
    updates = alice.reply(Joined, room="ops", topic="on call", private=True, role="owner")
    ops = alice.state.conversations[ConvKey.room("ops")]
    assert (ops.topic, ops.private, ops.role, ops.can_moderate) == ("on call", True, "owner", True)
    assert alice.state.current == ops.key
    assert CurrentChanged(ops.key) in updates
    assert alice.session.create_room("bad name!", private=False, topic="") is not None
    assert alice.session.create_room("fine", private=False, topic="x" * 301) is not None
    alice.session.create_room("taken", private=False, topic="")
    alice.reply(Error, code="room_exists", message="a room of that name exists")
    notices = [line.text for line in ops.lines if line.sender is None]
    assert notices[-1] == "Cannot create: a room of that name exists."


def test_moderation_requests_and_their_outcomes(alice: Session) -> None:
    alice.receive(Joined(room="dev", topic="", private=False, role="moderator"))
    alice.session.select(DEV)
    assert alice.session.invite("bob") is None
    assert alice.network.sent[-1] == Invite(room="dev", user="bob")
    assert Notice("Invite bob to #dev: done.") in alice.reply(Ok)
    assert alice.session.set_topic("  release on Friday ") is None
    assert alice.sent(SetTopic) == [SetTopic(room="dev", topic="release on Friday")]
    alice.session.kick("carol", "spam", ban=True)
    assert alice.sent(Kick) == [Kick(room="dev", user="carol", reason="spam", ban=True)]
    updates = alice.reply(Error, code="not_allowed", message="cannot ban a moderator")
    [notice] = [u for u in updates if isinstance(u, Notice)]
    assert notice.error
    assert "not allowed" in notice.text
    assert alice.session.kick("alice") is not None  # oneself: Leave instead
    assert topic_error("line\nbreak") is not None


def test_room_frames_update_the_room(alice: Session) -> None:
    alice.receive(WhoReply(room="dev", members=(
        MemberInfo(user="alice", online=True, role="member"),
        MemberInfo(user="bob", online=True, role="owner"),
    )))  # fmt: skip
    dev = alice.state.conversations[DEV]
    assert (dev.role, dev.can_moderate) == ("member", False)
    assert dev.members["bob"].role == "owner"
    updates = alice.receive(TopicChanged(room="dev", topic="ship it", by="bob"))
    assert RoomChanged(DEV) in updates
    assert dev.topic == "ship it"
    assert "bob set the topic: ship it" in [line.text for line in dev.lines]
    alice.receive(RoleChanged(room="dev", user="alice", role="moderator", by="bob"))
    assert (dev.role, dev.can_moderate) == ("moderator", True)
    assert dev.members["alice"].role == "moderator"


def test_kicked_leaves_the_list_with_a_notice(alice: Session) -> None:
    alice.session.select(DEV)
    updates = alice.receive(Kicked(room="dev", by="bob", reason="off topic", ban=True))
    assert DEV not in alice.state.conversations
    assert alice.state.current == GENERAL
    [alert] = [u for u in updates if isinstance(u, Alert)]
    assert "bob banned you from #dev" in alert.text
    assert "off topic" in alert.text


def test_invited_and_banned(alice: Session) -> None:
    updates = alice.receive(Invited(room="ops", by="bob", topic="on call"))
    assert updates == [InviteReceived("ops", "bob", "on call")]
    alice.session.join("ops")
    updates = alice.reply(Error, code="banned", message="banned")
    [alert] = [u for u in updates if isinstance(u, Alert)]
    assert "banned from #ops" in alert.text


def test_the_room_list_gives_the_topics_and_privacy_of_ones_rooms(alice: Session) -> None:
    [first] = alice.sent(ListRooms)
    assert first == ListRooms()
    alice.receive(
        RoomsReply(
            rooms=(
                RoomInfo(name="dev", members=3, joined=True, topic="builds", private=True),
                RoomInfo(name="elsewhere", members=1, joined=False, topic="x", private=False),
            ),
            more=True,
            req=alice.network.sent.index(first) + 1,
        )
    )
    dev = alice.state.conversations[DEV]
    assert (dev.topic, dev.private) == ("builds", True)
    assert ConvKey.room("elsewhere") not in alice.state.conversations
    assert alice.sent(ListRooms)[-1] == ListRooms(after="elsewhere")
