"""Client logic without a server or a window: validation, commands, state, trust."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chatsecure.client import commands
from chatsecure.client.state import ChatState, ConvKey
from chatsecure.client.trust import TrustStore, Verdict
from chatsecure.client.validation import message_error, new_password_error, port_error, room_error
from chatsecure.protocol import Message


def test_client_logic_imports_no_tkinter():
    code = (
        "import sys, json; import chatsecure.client.session, chatsecure.client.network; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert not [m for m in json.loads(out.stdout) if m.startswith(("tkinter", "_tkinter"))]


def test_validation_messages():
    assert port_error("70000") is not None
    assert port_error("5443") is None
    assert room_error("Dev Ops") is not None
    assert room_error("Dev") is None
    assert "limit is 4000" in (message_error("x" * 4001) or "")
    assert message_error("   ") is not None
    assert new_password_error("alice", "old-pass", "new-pass-1", "new-pass-2") is not None
    assert new_password_error("alice", "old-pass", "short", "short") is not None
    assert new_password_error("alice", "old-pass", "a-good-one!", "a-good-one!") is None


def test_slash_commands():
    assert commands.parse("/join Dev") == commands.JoinRoom("dev")
    assert commands.parse("/leave") == commands.LeaveRoom(None)
    assert commands.parse("/msg bob hi there") == commands.DirectMessage("bob", "hi there")
    assert commands.parse("//shrug") == commands.SayText("/shrug")
    assert commands.parse("hello") == commands.SayText("hello")
    assert isinstance(commands.parse("/msg bob"), str)
    assert isinstance(commands.parse("/frobnicate"), str)


def _msg(id_: int, sender: str = "bob", room: str | None = "general", to: str | None = None):
    return Message(
        id=id_, ts="2026-11-21T10:00:00.000Z", from_=sender, text=f"m{id_}", room=room, to=to
    )


def test_state_orders_dedups_and_counts_unread():
    state = ChatState("alice")
    general, dev = state.ensure_room("general"), state.ensure_room("dev")
    state.select(general.key)
    state.add_messages([_msg(3), _msg(1)], unread=True)
    state.add_messages([_msg(2), _msg(3), _msg(4, room="dev")], unread=True)
    assert [line.id for line in general.lines] == [1, 2, 3]
    assert general.unread == 0
    assert dev.unread == 1
    state.add_messages([_msg(5, sender="alice", room="dev")], unread=True)
    assert dev.unread == 1  # one's own messages are not unread
    state.add_messages([_msg(6, sender="alice", room=None, to="Bob")], unread=True)
    state.add_messages([_msg(7, sender="BOB", room=None, to="alice")], unread=True)
    direct = state.conversations[ConvKey.direct("bob")]
    assert [line.id for line in direct.lines] == [6, 7]
    assert direct.unread == 1
    state.select(dev.key)
    assert dev.unread == 0


def test_sidebar_lists_rooms_then_direct_chats_each_by_name():
    state = ChatState("alice")
    state.ensure_direct("Bob")
    state.ensure_room("zeta")
    state.ensure_direct("amy")
    state.ensure_room("dev")
    assert [c.title for c in state.ordered()] == ["dev", "zeta", "amy", "Bob"]


def test_clear_hides_messages_until_loaded_again():
    state = ChatState("alice")
    general = state.ensure_room("general")
    state.add_messages([_msg(1), _msg(2)], unread=False)
    state.clear(general.key, "2026-11-21T10:00:00.000Z")
    assert [line.id for line in general.lines] == [None]
    assert general.oldest_id == 3
    state.add_messages([_msg(2)], unread=False)  # a page sent again after a reconnect
    assert [line.id for line in general.lines] == [None]
    state.add_messages([_msg(1), _msg(2)], unread=False, older=True)
    assert [line.id for line in general.lines] == [1, 2, None]


def test_trust_store_pins_and_refuses_changes(tmp_path):
    store = TrustStore(tmp_path / "known.json")
    assert store.check("Example.org", 5443, "AA") is Verdict.UNKNOWN
    store.remember("Example.org", 5443, "AA")
    assert store.check("example.org", 5443, "AA") is Verdict.TRUSTED
    assert store.check("example.org", 5443, "BB") is Verdict.CHANGED
    assert store.check("example.org", 5444, "AA") is Verdict.UNKNOWN
    store.forget("example.org", 5443)
    assert store.check("example.org", 5443, "BB") is Verdict.UNKNOWN


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("[::1]", "::1"),
        ("FE80::1%lo", "fe80::1%lo"),
        ("Example.ORG", "example.org"),
    ],
)
def test_trust_store_pins_one_server_under_any_spelling(tmp_path, spelling, canonical):
    store = TrustStore(tmp_path / "known.json")
    store.remember(spelling, 5443, "AA")
    assert json.loads(store.path.read_text()) == {f"{canonical}:5443": "AA"}
    assert store.check(canonical, 5443, "BB") is Verdict.CHANGED
    store.forget(canonical, 5443)
    assert store.check(spelling, 5443, "AA") is Verdict.UNKNOWN
