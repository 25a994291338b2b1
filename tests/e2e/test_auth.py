"""Connection lifecycle: hello, login and what follows it, refusals, throttling, logout."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import assert_error, join, send_direct, send_room, timed_login
from tests.serverproc import password_of

ON_LOGIN = 3
SERVER_CONFIG = {
    "history": {"on_login": ON_LOGIN},
    "rooms": {"default": ["lobby"]},
}

REQUESTS_AFTER_LOGIN = [
    {"type": "send", "room": "lobby", "text": "hi"},
    {"type": "send", "to": "someone", "text": "hi"},
    {"type": "join", "room": "dev"},
    {"type": "leave", "room": "lobby"},
    {"type": "rooms"},
    {"type": "who", "room": "lobby"},
    {"type": "history", "room": "lobby"},
    {"type": "history", "with": "someone", "after": 1},
    {"type": "passwd", "old": "whatever1", "new": "whatever2"},
    {"type": "logout"},
]


def test_hello_is_the_first_frame(server: ServerProcess) -> None:
    client = server.connect(read_hello=False)
    hello = client.next_frame()
    assert hello["type"] == "hello"
    assert hello["server"] == "chatsecure"
    assert hello["version"] == 1
    assert hello["max_frame_bytes"] == 65536


def test_login_sends_welcome_then_room_history_then_direct_history_then_who(
    server: ServerProcess,
) -> None:
    me, peer = server.new_users(2)
    room = "auth-login-order"
    first = server.member(me, room)
    room_ids = [send_room(first, room, f"room {n}") for n in range(ON_LOGIN + 2)]
    dm_ids = [send_direct(first, peer, f"dm {n}") for n in range(2)]

    client = server.connect()
    welcome = client.login(me, password_of(me))
    assert welcome["user"] == me
    assert sorted(welcome["rooms"]) == sorted(["lobby", room])

    room_histories = [client.next_frame() for _ in welcome["rooms"]]
    assert [h["type"] for h in room_histories] == ["history"] * 2
    assert sorted(h["room"] for h in room_histories) == sorted(welcome["rooms"])
    ours = next(h for h in room_histories if h["room"] == room)
    # The latest `on_login` messages, oldest first, and more exist.
    assert [m["id"] for m in ours["messages"]] == room_ids[-ON_LOGIN:]
    assert ours["more"] is True
    assert all(m["room"] == room and m["from"] == me for m in ours["messages"])

    direct = client.next_frame()
    assert direct["type"] == "history"
    assert direct["with"] == peer
    assert "room" not in direct
    assert [m["id"] for m in direct["messages"]] == dm_ids
    assert all(m["to"] == peer and "room" not in m for m in direct["messages"])

    whos = [client.next_frame() for _ in welcome["rooms"]]
    assert [w["type"] for w in whos] == ["who"] * 2
    assert sorted(w["room"] for w in whos) == sorted(welcome["rooms"])
    who = next(w for w in whos if w["room"] == room)
    assert who["members"] == [{"user": me, "online": True, "role": "owner"}]
    assert "req" not in direct  # unasked frames answer nothing
    assert "req" not in who


def test_login_sends_history_of_the_twenty_most_recent_direct_peers(
    server: ServerProcess,
) -> None:
    me, *peers = server.new_users(23)
    sender = server.login(me)
    for n, peer in enumerate(peers):
        send_direct(sender, peer, f"hello {n}")

    client = server.connect()
    welcome = client.login(me, password_of(me))
    assert welcome["rooms"] == ["lobby"]
    before_who, _ = client.frames_until("who", room="lobby")
    direct = [f for f in before_who if "with" in f]
    assert len(direct) == 20
    assert {f["with"] for f in direct} == set(peers[-20:])
    for frame in direct:
        assert len(frame["messages"]) == 1
        assert frame["messages"][0]["to"] == frame["with"]


def test_username_is_case_insensitive_and_reported_as_created(server: ServerProcess) -> None:
    server.add_users(["Carol.Mixed"])
    client = server.connect()
    welcome = client.login("cAROL.mIXED", password_of("Carol.Mixed"))
    assert welcome["user"] == "Carol.Mixed"


def test_unknown_user_wrong_password_and_disabled_account_look_the_same(
    server: ServerProcess,
) -> None:
    real, disabled = server.new_users(2)
    server.admin("disable", disabled)
    client = server.connect()
    attempts = {
        "unknown": ("nobody-here", "some password"),
        "wrong": (real, "not the password"),
        "disabled": (disabled, password_of(disabled)),
        "bad": ("not a valid name!", "some password"),
    }
    replies: dict[str, list[dict[str, Any]]] = {kind: [] for kind in attempts}
    timings: dict[str, list[float]] = {kind: [] for kind in attempts}
    for _ in range(3):  # under the per-account throttle of 5
        for kind, (username, password) in attempts.items():
            reply, elapsed = timed_login(client, username, password)
            replies[kind].append(reply)
            timings[kind].append(elapsed)

    for kind, kind_replies in replies.items():
        for reply in kind_replies:
            assert_error(reply, "auth_failed")
            assert reply["message"] == "invalid username or password", (kind, reply)
            assert set(reply) == {"type", "code", "message", "req"}, (kind, reply)
    # Each costs a bcrypt check: no reply is conspicuously faster than the others.
    fastest = {kind: min(times) for kind, times in timings.items()}
    typical = statistics.median(fastest.values())
    for kind, seconds in fastest.items():
        assert seconds > typical / 3, (kind, fastest)
    # The connection stays usable.
    assert client.login(real, password_of(real))["user"] == real


def test_five_failures_throttle_the_account_and_the_password_is_not_checked(
    server: ServerProcess,
) -> None:
    user = server.new_user()
    client = server.connect()
    for _ in range(5):
        reply, _ = timed_login(client, user, "wrong password")
        assert_error(reply, "auth_failed")
    req = "throttled"
    reply = client.request(
        {"type": "login", "username": user, "password": password_of(user), "req": req}
    )
    assert_error(reply, "rate_limited", req)
    assert isinstance(reply["retry_after"], int)
    assert 0 < reply["retry_after"] <= 15 * 60
    # A new connection is throttled too: it is the account, not the connection.
    other = server.connect()
    reply = other.request({"type": "login", "username": user, "password": password_of(user)})
    assert_error(reply, "rate_limited")


def test_unknown_names_are_throttled_like_real_ones(server: ServerProcess) -> None:
    client = server.connect()
    for _ in range(5):
        reply, _ = timed_login(client, "ghost-user", "wrong password")
        assert_error(reply, "auth_failed")
    reply, _ = timed_login(client, "ghost-user", "wrong password")
    assert_error(reply, "rate_limited")
    assert reply["retry_after"] > 0


def test_already_authenticated(server: ServerProcess) -> None:
    user = server.new_user()
    client = server.login(user)
    reply = client.request(
        {"type": "login", "username": user, "password": password_of(user), "req": 77}
    )
    assert_error(reply, "already_authenticated", 77)


@pytest.mark.parametrize("frame", REQUESTS_AFTER_LOGIN, ids=lambda f: f["type"])
def test_requests_before_login_are_not_authenticated(
    server: ServerProcess, frame: dict[str, Any]
) -> None:
    client = server.connect()
    reply = client.request({**frame, "req": "early"})
    assert_error(reply, "not_authenticated", "early")
    # Whatever its fields say: a malformed request before login is also refused for state.
    reply = client.request({**frame, "room": 5, "req": 6})
    assert_error(reply, "not_authenticated", 6)
    assert client.request({"type": "ping", "req": "alive"}) == {"type": "pong", "req": "alive"}


def test_ping_before_login(server: ServerProcess) -> None:
    client = server.connect()
    assert client.request({"type": "ping", "req": 11}) == {"type": "pong", "req": 11}


def test_login_timeout(server_factory: ServerFactory) -> None:
    quick = server_factory({"limits": {"login_timeout": 1}})
    user = quick.new_user()
    idle = quick.connect()
    logged_in = quick.login(user)
    started = time.monotonic()
    assert idle.expect_bye("login_timeout", timeout=5) == []
    assert time.monotonic() - started < 4
    # A logged-in connection is not affected.
    assert logged_in.request({"type": "ping", "req": 1}) == {"type": "pong", "req": 1}


def test_address_throttle_spans_accounts(server_factory: ServerFactory) -> None:
    strict = server_factory({"auth": {"max_failures_per_address": 3}})
    users = strict.new_users(4)
    client = strict.connect()
    for user in users[:3]:
        reply, _ = timed_login(client, user, "wrong password")
        assert_error(reply, "auth_failed")
    reply, _ = timed_login(client, users[3], password_of(users[3]))
    assert_error(reply, "rate_limited")
    assert reply["retry_after"] > 0


def test_every_session_of_a_user_gets_every_frame(server: ServerProcess) -> None:
    me, friend = server.new_users(2)
    room = "auth-sessions"
    friend_client = server.member(friend, room)
    mine = [server.login(me) for _ in range(3)]
    # The first session says online once; later ones add nothing.
    assert friend_client.expect("presence", user=me) == {
        "type": "presence",
        "user": me,
        "status": "online",
    }
    join(mine[0], room)
    friend_client.expect("member", room=room, user=me, event="joined")

    room_id = send_room(friend_client, room, "to the room")
    dm_id = send_direct(friend_client, me, "to you")
    own_id = send_room(mine[1], room, "from my second session")
    for session in mine:
        got = [session.expect("message", id=i) for i in (room_id, dm_id, own_id)]
        assert [m["text"] for m in got] == ["to the room", "to you", "from my second session"]
        assert got[1]["to"] == me
        assert got[1]["from"] == friend
    friend_client.expect("message", id=own_id)

    # Still online while one session is open; offline when the last one goes.
    mine[0].send({"type": "logout"})
    mine[0].expect_bye("logout")
    mine[1].close()
    barrier = send_room(mine[2], room, "still here")
    before, _ = friend_client.frames_until("message", id=barrier)
    assert not [f for f in before if f["type"] == "presence" and f["user"] == me], before
    mine[2].close()
    assert friend_client.expect("presence", user=me)["status"] == "offline"


def test_passwd(server: ServerProcess) -> None:
    user = server.new_user()
    client = server.login(user)
    assert_error(
        client.request({"type": "passwd", "old": "not my password", "new": "a new password 1"}),
        "auth_failed",
    )
    assert_error(
        client.request({"type": "passwd", "old": password_of(user), "new": "short"}),
        "weak_password",
    )
    new = "a much better passphrase"
    reply = client.request({"type": "passwd", "old": password_of(user), "new": new, "req": 10})
    assert reply == {"type": "ok", "req": 10}
    fresh = server.connect()
    assert_error(
        fresh.request({"type": "login", "username": user, "password": password_of(user)}),
        "auth_failed",
    )
    assert fresh.login(user, new)["user"] == user


def test_logout_says_bye_and_closes(server: ServerProcess) -> None:
    user = server.new_user()
    client = server.login(user)
    client.send({"type": "logout"})
    assert client.expect_bye("logout") == []
