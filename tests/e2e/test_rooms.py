"""Rooms: join, leave, the room list, who is in a room, and sending to rooms."""

from __future__ import annotations

from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import assert_error, join, send_room, settle


def test_join_new_room_replies_joined_history_and_who(server: ServerProcess) -> None:
    user = server.new_user()
    client = server.login(user)
    joined, history, who = join(client, "rooms-fresh")
    assert joined["room"] == "rooms-fresh"
    assert history == {"type": "history", "room": "rooms-fresh", "messages": [], "more": False}
    assert who == {
        "type": "who",
        "room": "rooms-fresh",
        "members": [{"user": user, "online": True, "role": "owner"}],
    }
    # joined is the direct reply; history and who follow it unasked.
    assert "req" in joined
    assert "req" not in history
    assert "req" not in who


def test_join_history_holds_the_rooms_latest_messages(server: ServerProcess) -> None:
    first, second = server.new_users(2)
    a = server.member(first, "rooms-history")
    ids = [send_room(a, "rooms-history", f"m{n}") for n in range(3)]
    b = server.login(second)
    _, history, who = join(b, "rooms-history")
    assert [m["id"] for m in history["messages"]] == ids
    assert [m["text"] for m in history["messages"]] == ["m0", "m1", "m2"]
    assert history["more"] is False
    assert sorted(m["user"] for m in who["members"]) == sorted([first, second])
    assert all(m["online"] for m in who["members"])


def test_room_names_are_case_insensitive_and_reported_in_lower_case(
    server: ServerProcess,
) -> None:
    user = server.new_user()
    client = server.login(user)
    joined, history, who = join(client, "Rooms-MiXed")
    assert joined["room"] == history["room"] == who["room"] == "rooms-mixed"
    message_id = send_room(client, "ROOMS-MIXED", "hello")
    assert client.expect("message", id=message_id)["room"] == "rooms-mixed"


def test_invalid_room_name_is_bad_request(server: ServerProcess) -> None:
    client = server.login(server.new_user())
    for bad in ["", "-starts-with-dash", "has space", "x" * 33, "émoji"]:
        assert_error(client.request({"type": "join", "room": bad}), "bad_request")


def test_other_members_see_joined_and_left(server: ServerProcess) -> None:
    stayer, mover = server.new_users(2)
    room = "rooms-coming-going"
    a = server.member(stayer, room)
    b = server.member(mover, room)
    assert a.expect("member", room=room) == {
        "type": "member",
        "room": room,
        "user": mover,
        "event": "joined",
    }
    reply = b.request({"type": "leave", "room": room, "req": 3})
    assert reply == {"type": "ok", "req": 3}
    assert a.expect("member", room=room) == {
        "type": "member",
        "room": room,
        "user": mover,
        "event": "left",
    }
    # Gone means gone: no more messages from the room, and no sending to it.
    barrier = send_room(a, room, "after the leave")
    a.expect("message", id=barrier)
    assert not b.take_queued(lambda f: f.get("type") == "message")
    assert b.sync() == []
    assert_error(b.request({"type": "send", "room": room, "text": "hi"}), "not_member")


def test_joining_a_room_again_gets_the_same_reply_and_notifies_no_one(
    server: ServerProcess,
) -> None:
    watcher, joiner = server.new_users(2)
    room = "rooms-rejoin"
    a = server.member(watcher, room)
    b = server.member(joiner, room)
    a.expect("member", room=room, user=joiner, event="joined")
    joined, history, who = join(b, room)
    assert joined["room"] == history["room"] == who["room"] == room
    # The message is a barrier: a member event would have been queued before it.
    barrier = send_room(b, room, "barrier")
    before, _ = a.frames_until("message", id=barrier)
    assert [f for f in before if f["type"] == "member"] == []


def test_leave_a_room_one_is_not_in(server: ServerProcess) -> None:
    owner, outsider = server.new_users(2)
    join(server.login(owner), "rooms-not-mine")
    client = server.login(outsider)
    reply = client.request({"type": "leave", "room": "rooms-not-mine", "req": "l"})
    assert_error(reply, "not_member", "l")


def test_rooms_lists_every_room_with_member_count_and_joined(server: ServerProcess) -> None:
    first, second, outsider = server.new_users(3)
    join(server.login(first), "rooms-listed")
    join(server.login(second), "rooms-listed")
    reply = server.login(outsider).request({"type": "rooms", "req": 4})
    assert reply["type"] == "rooms"
    assert reply["req"] == 4
    listed = {room["name"]: room for room in reply["rooms"]}
    assert listed["rooms-listed"] == {
        "name": "rooms-listed",
        "members": 2,
        "joined": False,
        "topic": "",
        "private": False,
    }
    member_view = server.login(first).request({"type": "rooms"})
    listed = {room["name"]: room for room in member_view["rooms"]}
    assert listed["rooms-listed"] == {
        "name": "rooms-listed",
        "members": 2,
        "joined": True,
        "topic": "",
        "private": False,
    }


def test_who_is_only_for_members_and_shows_who_is_online(server: ServerProcess) -> None:
    online, offline, outsider = server.new_users(3)
    room = "rooms-who"
    gone = server.member(offline, room)
    gone.close()
    client = server.login(online)
    settle(client, join(client, room)[2], offline)
    reply = client.request({"type": "who", "room": room, "req": 5})
    assert reply["type"] == "who"
    assert reply["req"] == 5
    assert reply["room"] == room
    assert {m["user"]: m["online"] for m in reply["members"]} == {online: True, offline: False}
    other = server.login(outsider)
    assert_error(other.request({"type": "who", "room": room, "req": 6}), "not_member", 6)


def test_send_to_a_room_reaches_every_member_and_only_members(server: ServerProcess) -> None:
    sender, member, outsider = server.new_users(3)
    room = "rooms-send"
    a = server.member(sender, room)
    b = server.member(member, room)
    c = server.login(outsider)
    reply = a.request({"type": "send", "room": room, "text": "hi all", "req": 7})
    assert reply["req"] == 7
    for client in (a, b):
        message = client.expect("message", id=reply["id"])
        assert message == {
            "type": "message",
            "id": reply["id"],
            "ts": reply["ts"],
            "from": sender,
            "room": room,
            "text": "hi all",
        }
    assert [f for f in c.sync() if f["type"] == "message"] == []
    assert_error(c.request({"type": "send", "room": room, "text": "let me in"}), "not_member")
    assert_error(c.request({"type": "send", "room": "rooms-nowhere", "text": "x"}), "no_such_room")


def test_from_is_set_by_the_server(server: ServerProcess) -> None:
    sender, victim = server.new_users(2)
    client = server.member(sender, "rooms-spoof")
    reply = client.request({"type": "send", "room": "rooms-spoof", "text": "hi", "from": victim})
    message = client.expect("message", id=reply["id"])
    assert message["from"] == sender


def test_no_such_room_when_users_cannot_create_rooms(server_factory: ServerFactory) -> None:
    fixed = server_factory({"rooms": {"default": ["lobby"], "users_can_create": False}})
    user = fixed.new_user()
    client = fixed.login(user)
    reply = client.request({"type": "join", "room": "brand-new", "req": 2})
    assert_error(reply, "no_such_room", 2)
    listed = client.request({"type": "rooms"})["rooms"]
    assert [room["name"] for room in listed] == ["lobby"]
    # A room the admin made can be joined.
    fixed.admin("addroom", "made-by-admin")
    joined, _, _ = join(client, "made-by-admin")
    assert joined["room"] == "made-by-admin"
