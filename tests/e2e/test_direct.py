"""Direct messages: to every session of both parties and no one else."""

from __future__ import annotations

from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import assert_error, history, send_direct


def test_direct_message_reaches_both_parties_sessions_only(server: ServerProcess) -> None:
    alice, bob, carol = server.new_users(3)
    a1, a2 = server.login(alice), server.login(alice)
    b1, b2 = server.login(bob), server.login(bob)
    c = server.login(carol)
    reply = a1.request({"type": "send", "to": bob, "text": "psst", "req": 8})
    assert reply["type"] == "ok"
    assert reply["req"] == 8
    for client in (a1, a2, b1, b2):
        assert client.expect("message", id=reply["id"]) == {
            "type": "message",
            "id": reply["id"],
            "ts": reply["ts"],
            "from": alice,
            "to": bob,
            "text": "psst",
        }
    assert [f for f in c.sync() if f["type"] == "message"] == []


def test_direct_message_to_an_offline_user_is_stored(server: ServerProcess) -> None:
    sender, absent = server.new_users(2)
    message_id = send_direct(server.login(sender), absent, "read me later")
    page = history(server.login(absent), **{"with": sender})
    assert [(m["id"], m["from"], m["to"]) for m in page["messages"]] == [
        (message_id, sender, absent)
    ]


def test_recipient_name_is_case_insensitive(server: ServerProcess) -> None:
    server.add_users(["Dee.Direct"])
    sender = server.new_user()
    client = server.login(sender)
    message_id = send_direct(client, "dee.DIRECT", "hi Dee")
    assert client.expect("message", id=message_id)["to"] == "Dee.Direct"


def test_no_such_user(server: ServerProcess) -> None:
    client = server.login(server.new_user())
    reply = client.request({"type": "send", "to": "nobody-at-all", "text": "hello?", "req": 9})
    assert_error(reply, "no_such_user", 9)
    reply = client.request({"type": "history", "with": "nobody-at-all"})
    assert_error(reply, "no_such_user")


def test_history_with_a_peer(server: ServerProcess) -> None:
    me, peer, other = server.new_users(3)
    mine = server.login(me)
    theirs = server.login(peer)
    ids = [
        send_direct(mine, peer, "one"),
        send_direct(theirs, me, "two"),
        send_direct(mine, peer, "three"),
    ]
    send_direct(mine, other, "not part of it")
    for client, party in ((mine, peer), (theirs, me)):
        page = history(client, **{"with": party, "req": 12})
        assert page["with"] == party
        assert page["req"] == 12
        assert "room" not in page
        assert [m["id"] for m in page["messages"]] == ids
        assert [m["text"] for m in page["messages"]] == ["one", "two", "three"]
        assert page["more"] is False


def test_sending_to_oneself(server: ServerProcess) -> None:
    me = server.new_user()
    first, second = server.login(me), server.login(me)
    message_id = send_direct(first, me, "note to self")
    for client in (first, second):
        message = client.expect("message", id=message_id)
        assert message["to"] == me
        assert message["from"] == me
        assert client.sync() == []  # once, not once per party
