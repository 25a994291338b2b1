"""The authorization matrix: every request type, aimed at what belongs to someone else.

Alice is in a private room and talks to Carol directly; Mallory is logged in and
tries, request by request, to read, write or change what is theirs. Every attempt
is refused with the contract's code, or (where the contract gives Mallory only her
own view, e.g. ``history with``) answered with her own data and nothing of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.e2e.client import ChatClient
from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import assert_error, history, join, send_direct, send_room
from tests.serverproc import password_of

SERVER_CONFIG = {"rooms": {"default": [], "users_can_create": False}}
PRIVATE = "private"
MALLORY_ROOM = "mallory-room"


@dataclass
class Cast:
    alice: ChatClient
    carol: ChatClient
    mallory: ChatClient
    names: dict[str, str]
    room_ids: list[int]
    direct_ids: list[int]


@pytest.fixture(scope="module")
def rooms(module_server: ServerProcess) -> None:
    """Rooms are an admin's to create on this server (users_can_create is off)."""
    for room in (PRIVATE, MALLORY_ROOM):
        module_server.admin("addroom", room)


@pytest.fixture
def cast(server: ServerProcess, rooms: None) -> Cast:
    alice, carol, mallory = server.new_users(3)
    a, c, m = server.login(alice), server.login(carol), server.login(mallory)
    join(a, PRIVATE)
    join(m, MALLORY_ROOM)
    room_ids = [send_room(a, PRIVATE, f"private {n}") for n in range(3)]
    direct_ids = [send_direct(a, carol, f"for carol only {n}") for n in range(3)]
    c.sync()
    return Cast(a, c, m, {"alice": alice, "carol": carol, "mallory": mallory}, room_ids, direct_ids)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "history", "room": PRIVATE}, "not_member"),
        ({"type": "history", "room": PRIVATE, "after": 1}, "not_member"),
        ({"type": "history", "room": PRIVATE, "before": 10**9, "limit": 500}, "not_member"),
        ({"type": "who", "room": PRIVATE}, "not_member"),
        ({"type": "send", "room": PRIVATE, "text": "let me in"}, "not_member"),
        ({"type": "leave", "room": PRIVATE}, "not_member"),
        ({"type": "join", "room": "not-a-room"}, "no_such_room"),
        ({"type": "history", "room": "not-a-room"}, "no_such_room"),
        ({"type": "login", "username": "x", "password": "y"}, "already_authenticated"),
    ],
    ids=[
        "history-room",
        "history-room-after",
        "history-room-before",
        "who-room",
        "send-room",
        "leave-room",
        "join-missing-room",
        "history-missing-room",
        "login-again",
    ],
)
def test_refused_with_the_contract_code(cast: Cast, frame: dict[str, object], code: str) -> None:
    reply = cast.mallory.request(frame)
    assert_error(reply, code)
    # Nothing of Alice's room leaked to Mallory, in the reply or unasked.
    leaked = repr([reply, *cast.mallory.sync()])
    assert "private " not in leaked
    assert "for carol only" not in leaked


def test_login_again_does_not_switch_accounts(cast: Cast) -> None:
    alice = cast.names["alice"]
    reply = cast.mallory.request(
        {"type": "login", "username": alice, "password": password_of(alice)}
    )
    assert_error(reply, "already_authenticated")
    sent = cast.mallory.request({"type": "send", "room": MALLORY_ROOM, "text": "who am I"})
    assert sent["type"] == "ok"
    (message,) = history(cast.mallory, room=MALLORY_ROOM, after=sent["id"] - 1)["messages"]
    assert message["from"] == cast.names["mallory"]


def test_direct_history_is_only_ever_the_askers_own_conversation(cast: Cast) -> None:
    carol, alice = cast.names["carol"], cast.names["alice"]
    for peer in (carol, alice):
        for page in ({}, {"after": 1}, {"before": 10**9}):
            reply = history(cast.mallory, **{"with": peer}, **page, limit=500)
            assert reply["messages"] == [], reply
    # While Carol does see what Alice sent her.
    theirs = history(cast.carol, **{"with": alice})
    assert [m["id"] for m in theirs["messages"]] == cast.direct_ids


def test_a_from_field_is_ignored_the_server_names_the_sender(cast: Cast) -> None:
    alice, carol, mallory = cast.names["alice"], cast.names["carol"], cast.names["mallory"]
    join(cast.alice, MALLORY_ROOM)
    spoofed = {"from": alice, "user": alice, "sender": alice}
    room_ok = cast.mallory.request(
        {"type": "send", "room": MALLORY_ROOM, "text": "I am alice", **spoofed}
    )
    direct_ok = cast.mallory.request({"type": "send", "to": carol, "text": "alice here", **spoofed})
    room_message = cast.alice.expect("message", id=room_ok["id"])
    direct_message = cast.carol.expect("message", id=direct_ok["id"])
    assert room_message["from"] == mallory
    assert direct_message["from"] == mallory
    assert direct_message["to"] == carol
    # Stored that way too: Carol's conversation with Alice did not gain it.
    assert direct_ok["id"] not in [
        m["id"] for m in history(cast.carol, **{"with": alice})["messages"]
    ]


def test_passwd_changes_only_the_callers_password(cast: Cast, server: ServerProcess) -> None:
    alice, mallory = cast.names["alice"], cast.names["mallory"]
    reply = cast.mallory.request(
        {
            "type": "passwd",
            "user": alice,
            "username": alice,
            "old": password_of(mallory),
            "new": "a brand new passphrase 1",
        }
    )
    assert reply["type"] == "ok", reply
    server.login(alice)  # Alice's password still works
    fresh = server.connect()
    assert fresh.login(mallory, "a brand new passphrase 1")["user"] == mallory


def test_a_non_member_receives_nothing_of_the_room_and_a_leaver_stops_receiving(
    cast: Cast,
) -> None:
    before = send_room(cast.alice, PRIVATE, "members only")
    assert before not in [f.get("id") for f in cast.mallory.sync()]
    join(cast.carol, PRIVATE)
    assert cast.carol.request({"type": "leave", "room": PRIVATE})["type"] == "ok"
    after = send_room(cast.alice, PRIVATE, "after carol left")
    frames = cast.carol.sync()
    assert after not in [f.get("id") for f in frames if f["type"] == "message"]
    assert_error(cast.carol.request({"type": "history", "room": PRIVATE}), "not_member")


def test_rooms_shows_names_and_counts_never_messages(cast: Cast) -> None:
    reply = cast.mallory.request({"type": "rooms"})
    rooms = {room["name"]: room for room in reply["rooms"]}
    assert rooms[PRIVATE]["joined"] is False
    assert rooms[MALLORY_ROOM]["joined"] is True
    assert "private " not in repr(reply)


def test_logout_ends_only_the_callers_connection(cast: Cast) -> None:
    cast.mallory.send({"type": "logout", "user": cast.names["alice"]})
    cast.mallory.expect_bye("logout")
    assert cast.alice.request({"type": "ping", "req": 1}) == {"type": "pong", "req": 1}
