"""Edits, deletions (the contract's ``edit``) and read markers (``read``), seen by a client
that knows only the contract."""

from __future__ import annotations

import sqlite3

from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import TIMESTAMP, assert_error, history, join, send_direct, send_room
from tests.serverproc import password_of


def test_the_author_edits_and_every_reader_sees_it(server: ServerProcess) -> None:
    alice, bob = server.new_users(2)
    a = server.member(alice, "ed-room")
    b = server.member(bob, "ed-room")
    msg = send_room(a, "ed-room", "helo")
    b.expect("message", id=msg)
    reply = a.request({"type": "edit", "id": msg, "text": "hello"})
    assert reply["type"] == "ok", reply
    assert TIMESTAMP.fullmatch(reply["edited_ts"]), reply
    edited = b.expect("edited", id=msg)
    assert edited == {
        "type": "edited",
        "id": msg,
        "room": "ed-room",
        "text": "hello",
        "edited_ts": reply["edited_ts"],
        "by": alice,
    }
    a.expect("edited", id=msg)
    [shown] = [m for m in history(b, room="ed-room")["messages"] if m["id"] == msg]
    assert shown["text"] == "hello"
    assert shown["edited_ts"] == reply["edited_ts"]
    assert_error(b.request({"type": "edit", "id": msg, "text": "mine now"}), "not_allowed")
    assert_error(a.request({"type": "edit", "id": msg, "text": " "}), "empty_text")
    assert_error(a.request({"type": "edit", "id": 10**12, "text": "x"}), "no_such_message")


def test_deleting_removes_the_text_from_history_and_the_database(server: ServerProcess) -> None:
    alice, bob = server.new_users(2)
    a = server.member(alice, "ed-delete")
    b = server.member(bob, "ed-delete")
    secret = "ed-delete-the-launch-code-4242"
    msg = send_room(a, "ed-delete", secret)
    b.expect("message", id=msg)
    assert_error(b.request({"type": "delete", "id": msg}), "not_allowed")
    assert a.request({"type": "delete", "id": msg})["type"] == "ok"
    deleted = b.expect("deleted", id=msg)
    assert deleted == {"type": "deleted", "id": msg, "room": "ed-delete", "by": alice}
    [shown] = [m for m in history(b, room="ed-delete")["messages"] if m["id"] == msg]
    assert shown["deleted"] is True
    assert "text" not in shown
    assert shown["from"] == alice
    assert shown["room"] == "ed-delete"
    assert_error(a.request({"type": "edit", "id": msg, "text": "back"}), "no_such_message")
    with sqlite3.connect(server.db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in server.directory.glob("chat.db*"):
        assert secret.encode() not in path.read_bytes(), path


def test_room_moderators_delete_others_messages(server: ServerProcess) -> None:
    owner, member = server.new_users(2)
    o = server.login(owner)
    assert o.request({"type": "create", "room": "ed-mod"})["type"] == "joined"
    m = server.member(member, "ed-mod")
    msg = send_room(m, "ed-mod", "off topic")
    assert o.request({"type": "delete", "id": msg})["type"] == "ok"
    m.expect("deleted", id=msg, by=owner)


def test_direct_messages_are_edited_between_the_two_only(server: ServerProcess) -> None:
    alice, bob, eve = server.new_users(3)
    a, b, e = server.login(alice), server.login(bob), server.login(eve)
    msg = send_direct(a, bob, "psst")
    b.expect("message", id=msg)
    assert_error(e.request({"type": "edit", "id": msg, "text": "x"}), "no_such_message")
    assert_error(e.request({"type": "delete", "id": msg}), "no_such_message")
    assert a.request({"type": "edit", "id": msg, "text": "psst!"})["type"] == "ok"
    edited = b.expect("edited", id=msg)
    assert edited["to"] == bob
    assert "room" not in edited


def test_read_markers_move_forward_across_devices_and_come_with_the_login(
    server: ServerProcess,
) -> None:
    alice, bob = server.new_users(2)
    a = server.member(alice, "rd-room")
    ids = [send_room(a, "rd-room", f"m{n}") for n in range(3)]
    phone, laptop = server.member(bob, "rd-room"), server.login(bob)
    assert phone.request({"type": "read", "room": "rd-room", "up_to": ids[1]})["type"] == "ok"
    assert laptop.expect("read", room="rd-room") == {
        "type": "read",
        "room": "rd-room",
        "up_to": ids[1],
    }
    # Backwards changes nothing and tells no one.
    assert phone.request({"type": "read", "room": "rd-room", "up_to": ids[0]})["type"] == "ok"
    dm = send_direct(a, bob, "direct")
    assert laptop.request({"type": "read", "with": alice, "up_to": dm})["type"] == "ok"
    phone.expect("read", up_to=dm)
    assert not [f for f in laptop.sync() if f.get("type") == "read"]
    fresh = server.connect()
    fresh.request({"type": "login", "username": bob, "password": password_of(bob)})
    room_page = fresh.expect("history", room="rd-room")
    direct_page = next(f for f in fresh.sync() if f.get("with") == alice)
    assert room_page["read_up_to"] == ids[1]
    assert direct_page["read_up_to"] == dm
    assert_error(fresh.request({"type": "read", "room": "rd-room"}), "bad_request")


def test_a_room_never_read_has_marker_zero(server: ServerProcess) -> None:
    user = server.new_user()
    client = server.login(user)
    join(client, "rd-fresh")
    again = server.connect()
    again.request({"type": "login", "username": user, "password": password_of(user)})
    assert again.expect("history", room="rd-fresh")["read_up_to"] == 0
