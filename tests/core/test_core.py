"""The service's behaviour per request, through its JSON adapter, without sockets or TLS."""

from __future__ import annotations

import dataclasses

import pytest

from chatsecure.protocol import (
    Bye,
    ClientPing,
    Error,
    Hello,
    History,
    HistoryReply,
    Join,
    Joined,
    Leave,
    ListRooms,
    Login,
    Logout,
    Member,
    Message,
    Ok,
    Passwd,
    Presence,
    RoomsReply,
    Send,
    ServerPing,
    ServerPong,
    Welcome,
    Who,
    WhoReply,
)
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.service import ChatService
from chatsecure.server.json import JsonWire
from chatsecure.storage.db import make_engine
from chatsecure.storage.store import Store

from .conftest import PASSWORD, Client


def test_hello_then_login_sends_welcome_history_and_who(connect, login):
    alice = login("alice")
    client = connect()
    assert isinstance(client.outbox.next(), Hello)
    client.send(Login(username="BOB", password=PASSWORD, req=1))
    welcome = client.outbox.next(Welcome)
    assert (welcome.req, welcome.user, welcome.rooms) == (1, "bob", ("general",))
    assert client.outbox.next(HistoryReply).room == "general"
    who = client.outbox.next(WhoReply)
    assert {(m.user, m.online) for m in who.members} == {
        ("alice", True),
        ("bob", True),
        ("carol", False),
    }
    assert alice.outbox.next(Presence).user == "bob"


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong password"), ("nobody", PASSWORD)]
)
def test_failed_login_is_the_same_for_unknown_and_wrong(connect, username, password):
    client = connect()
    client.send(Login(username=username, password=password, req=3))
    error = client.outbox.next(Error)
    assert (error.code, error.message, error.req) == (
        "auth_failed",
        "invalid username or password",
        3,
    )


def test_disabled_account_cannot_log_in(connect, store):
    store.set_disabled("carol", True)
    client = connect()
    client.send(Login(username="carol", password=PASSWORD, req=1))
    assert client.outbox.next(Error).code == "auth_failed"


def test_throttled_after_five_failures_even_with_the_right_password(connect):
    client = connect()
    for _ in range(5):
        client.send(Login(username="alice", password="wrong password", req=1))
        assert client.outbox.next(Error).code == "auth_failed"
    client.send(Login(username="alice", password=PASSWORD, req=2))
    error = client.outbox.next(Error)
    assert error.code == "rate_limited"
    assert error.retry_after > 0


def test_a_reload_changes_the_login_throttles_from_the_next_check(connect, core):
    client = connect("10.0.0.8")
    client.send(Login(username="ghost", password="wrong password", req=1))
    assert client.outbox.next(Error).code == "auth_failed"
    auth = dataclasses.replace(core.settings.auth, max_failures=1)
    core.reconfigure(dataclasses.replace(core.settings, auth=auth))
    client.send(Login(username="ghost", password="wrong password", req=2))
    assert client.outbox.next(Error).code == "rate_limited"
    other = connect("10.0.0.7")
    other.send(Login(username="alice", password="wrong password", req=3))
    assert other.outbox.next(Error).code == "auth_failed"
    other.send(Login(username="alice", password=PASSWORD, req=4))
    assert other.outbox.next(Error).code == "rate_limited"  # its stored failure is the limit


def test_unknown_names_are_throttled_like_real_ones(connect):
    client = connect("10.0.0.9")
    for _ in range(5):
        client.send(Login(username="ghost", password="wrong password", req=1))
        assert client.outbox.next(Error).code == "auth_failed"
    client.send(Login(username="ghost", password="wrong password", req=2))
    assert client.outbox.next(Error).code == "rate_limited"


def test_the_per_address_throttle_holds_across_nodes_and_restarts(settings, store, clock):
    """Two services on one database are two nodes: an address's failures on either count."""
    auth = dataclasses.replace(settings.auth, max_failures_per_address=4)
    settings = dataclasses.replace(settings, auth=auth)
    url = settings.database.url
    nodes = [ChatService(settings, Store(make_engine(url)), Hub(), clock) for _ in range(3)]
    codes = []
    try:
        for node in nodes:
            node.start()
        # Each guess names another (unknown) account, so only the address's limit applies.
        for n, node in enumerate(nodes[:2] * 3):
            client = Client(JsonWire(node), "10.0.0.5")
            client.send(Login(username=f"ghost{n}", password="wrong password", req=n))
            codes.append(client.outbox.next(Error).code)
        # A node that has seen none of them (one started afresh, say) refuses it too.
        late = Client(JsonWire(nodes[2]), "10.0.0.5")
        late.send(Login(username="alice", password=PASSWORD, req="late"))
        codes.append(late.outbox.next(Error).code)
    finally:
        for node in nodes:
            node.shutdown()
    assert codes == ["auth_failed"] * 4 + ["rate_limited"] * 3


def test_an_address_is_throttled_in_memory_while_the_store_cannot_count(
    connect, core, store, monkeypatch
):
    auth = dataclasses.replace(core.settings.auth, max_failures_per_address=2)
    core.reconfigure(dataclasses.replace(core.settings, auth=auth))

    def disk_full(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "record_address_failure", disk_full)
    client = connect("10.0.0.6")
    for n, expected in enumerate(["auth_failed", "auth_failed", "rate_limited"]):
        client.send(Login(username=f"ghost{n}", password="wrong password", req=n))
        assert client.outbox.next(Error).code == expected


def test_requests_before_login_are_refused(connect):
    client = connect()
    client.send(Send(room="general", text="hi", req=5))
    error = client.outbox.next(Error)
    assert (error.code, error.req) == ("not_authenticated", 5)
    client.send(ClientPing(req=6))
    assert client.outbox.next(ServerPong).req == 6


def test_room_message_is_stored_acked_and_fanned_out(login, store):
    alice, bob = login("alice"), login("bob")
    alice.send(Send(room="general", text="hello, bob", req=7))
    ok = alice.outbox.next(Ok, req=7)
    assert ok.id > 0
    assert ok.ts.endswith("Z")
    for client in (alice, bob):
        message = client.outbox.next(Message)
        assert (message.id, message.from_, message.room, message.text) == (
            ok.id,
            "alice",
            "general",
            "hello, bob",
        )
    assert [m.text for m in store.room_history(store.room_id("general")).messages] == ["hello, bob"]


def test_direct_message_reaches_both_parties_only(login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    alice.send(Send(to="BOB", text="psst", req=8))
    ok = alice.outbox.next(Ok, req=8)
    for client in (alice, bob):
        message = client.outbox.next(Message)
        assert (message.id, message.to, message.from_) == (ok.id, "bob", "alice")
    carol.send(ClientPing(req="sync"))
    carol.outbox.next(ServerPong)
    assert not any(isinstance(f, Message) for f in carol.outbox.frames)


def test_direct_message_to_unknown_user(login):
    alice = login("alice")
    alice.send(Send(to="nobody", text="hi", req=9))
    assert alice.outbox.next(Error).code == "no_such_user"


def test_join_creates_room_notifies_members_and_leave(login):
    alice, bob = login("alice"), login("bob")
    alice.send(Join(room="dev", req=2))
    assert alice.outbox.next(Joined).room == "dev"
    assert alice.outbox.next(HistoryReply).room == "dev"
    assert alice.outbox.next(WhoReply).room == "dev"
    bob.send(Join(room="dev", req=3))
    bob.outbox.next(Joined)
    event = alice.outbox.next(Member)
    assert (event.room, event.user, event.event) == ("dev", "bob", "joined")
    # Joining again replies the same and tells no one.
    bob.send(Join(room="dev", req=4))
    bob.outbox.next(Joined, req=4)
    bob.send(Leave(room="dev", req=5))
    assert bob.outbox.next(Ok).req == 5
    event = alice.outbox.next(Member)
    assert (event.user, event.event) == ("bob", "left")
    assert not any(isinstance(f, Member) and f.event == "joined" for f in alice.outbox.unread())
    bob.send(Leave(room="dev", req=6))
    assert bob.outbox.next(Error).code == "not_member"


def test_non_members_cannot_read_or_write_a_room(login):
    alice, bob = login("alice"), login("bob")
    alice.send(Join(room="secret", req=1))
    alice.outbox.next(Joined)
    for request in (
        Send(room="secret", text="x", req=2),
        Who(room="secret", req=3),
        History(room="secret", req=4),
    ):
        bob.send(request)
        assert bob.outbox.next(Error).code == "not_member"
    bob.send(Who(room="nowhere", req=5))
    assert bob.outbox.next(Error).code == "no_such_room"


def test_rooms_lists_every_room_with_counts(login):
    alice = login("alice")
    alice.send(Join(room="dev", req=1))
    alice.outbox.next(Joined)
    alice.send(ListRooms(req=2))
    reply = alice.outbox.next(RoomsReply)
    assert {(r.name, r.members, r.joined) for r in reply.rooms} == {
        ("dev", 1, True),
        ("general", 3, True),
    }


def test_history_pages_before_and_after(login):
    alice = login("alice")
    ids = []
    for i in range(7):
        alice.send(Send(room="general", text=f"m{i}", req=i))
        ids.append(alice.outbox.next(Ok, req=i).id)
    alice.send(History(room="general", limit=3, req="a"))
    page = alice.outbox.next(HistoryReply, req="a")
    assert [m.id for m in page.messages] == ids[-3:]
    assert page.more
    alice.send(History(room="general", before=ids[4], limit=3, req="b"))
    page = alice.outbox.next(HistoryReply, req="b")
    assert [m.id for m in page.messages] == ids[1:4]
    assert page.more
    alice.send(History(room="general", after=ids[4], limit=5, req="c"))
    page = alice.outbox.next(HistoryReply, req="c")
    assert [m.id for m in page.messages] == ids[5:]
    assert not page.more


def test_direct_history_only_between_the_two(login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    alice.send(Send(to="bob", text="just us", req=1))
    alice.outbox.next(Ok)
    bob.send(History(with_="alice", req=2))
    assert [m.text for m in bob.outbox.next(HistoryReply, req=2).messages] == ["just us"]
    carol.send(History(with_="alice", req=3))
    assert carol.outbox.next(HistoryReply, req=3).messages == ()


def test_rate_limited_sender_gets_retry_after(login, core):
    alice = login("alice")
    # As a reload does: the new limit applies to the next message.
    limits = dataclasses.replace(core.settings.limits, messages_per_second=0.5, message_burst=1)
    core.reconfigure(dataclasses.replace(core.settings, limits=limits))
    alice.send(Send(room="general", text="one", req=1))
    alice.outbox.next(Ok)
    alice.send(Send(room="general", text="two", req=2))
    error = alice.outbox.next(Error)
    assert (error.code, error.retry_after) == ("rate_limited", 2)


def test_passwd_checks_old_and_policy(login, connect):
    alice = login("alice")
    alice.send(Passwd(old="wrong password", new="new password 1", req=1))
    assert alice.outbox.next(Error).code == "auth_failed"
    alice.send(Passwd(old=PASSWORD, new="short", req=2))
    assert alice.outbox.next(Error).code == "weak_password"
    alice.send(Passwd(old=PASSWORD, new="new password 1", req=3))
    assert alice.outbox.next(Ok).req == 3
    client = connect()
    client.send(Login(username="alice", password="new password 1", req=4))
    client.outbox.next(Welcome)


def test_logout_says_bye_and_presence_goes_offline(login):
    alice, bob = login("alice"), login("bob")
    bob.send(Logout())
    assert bob.outbox.next(Bye).reason == "logout"
    assert bob.outbox.closed
    alice.outbox.next(Presence, user="bob", status="offline")


def test_second_session_keeps_the_user_online(login):
    alice, bob1 = login("alice"), login("bob")
    bob2 = login("bob")
    bob1.send(Logout())
    alice.send(Send(room="general", text="still there?", req=1))
    assert bob2.outbox.next(Message).text == "still there?"
    assert not any(isinstance(f, Presence) and f.status == "offline" for f in alice.outbox.unread())


def test_login_timeout_and_idle_ping_then_drop(connect, login, clock, core):
    idle = login("alice")
    waiting = connect()
    clock.now += core.settings.limits.login_timeout + 1
    assert waiting.outbox.next(Bye, timeout=5).reason == "login_timeout"
    clock.now += core.settings.limits.idle_timeout / 2
    idle.outbox.next(ServerPing, timeout=5)
    clock.now += core.settings.limits.idle_timeout
    assert idle.outbox.next(Bye, timeout=5).reason == "idle_timeout"


def test_disabled_account_is_kicked(login, store):
    alice = login("alice")
    store.set_disabled("alice", True)
    assert alice.outbox.next(Bye, timeout=8).reason == "account_disabled"


def test_too_many_bad_frames(connect):
    client = connect()
    for _ in range(11):
        client.raw(b"not json\n")
    assert client.outbox.next(Bye).reason == "too_many_errors"
    assert client.outbox.closed


def test_storage_failure_sends_server_error_and_no_ok(login, store, monkeypatch):
    alice = login("alice")

    def broken(batch):
        raise OSError("disk full")

    monkeypatch.setattr(store, "insert_messages", broken)
    alice.send(Send(room="general", text="lost?", req=1))
    error = alice.outbox.next(Error)
    assert (error.code, error.req) == ("server_error", 1)
    assert not any(isinstance(f, Ok) for f in alice.outbox.frames if getattr(f, "req", None) == 1)


def test_shutdown_says_bye_to_everyone(login, core):
    alice = login("alice")
    core.shutdown()
    assert alice.outbox.next(Bye).reason == "shutdown"


def test_shutdown_does_not_tell_everyone_who_else_went(login, core):
    """n sessions in a room would otherwise get n² presence frames on the way out."""
    alice, bob = login("alice"), login("bob")
    core.shutdown()
    for client in (alice, bob):
        assert client.outbox.next(Bye).reason == "shutdown"
        presence = [f for f in client.outbox.frames if isinstance(f, Presence)]
        assert all(f.status == "online" for f in presence)


def test_one_unstorable_message_refuses_only_itself_not_its_batch(login, core, store):
    """carol's account is deleted while she is connected: her message cannot be stored."""
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    # Holding the ordering lock stalls the message writer, so these queue up together.
    with core.messages._writer._sequencer:
        alice.send(Send(room="general", text="a1", req=1))
        store.delete_account("carol")
        carol.send(Send(room="general", text="c1", req=2))
        bob.send(Send(room="general", text="b1", req=3))
    assert alice.outbox.next(Ok, req=1).id
    assert bob.outbox.next(Ok, req=3).id
    assert carol.outbox.next(Error, req=2).code == "server_error"
    bob.outbox.next(Message, text="b1")
    assert not [f for f in bob.outbox.frames if isinstance(f, Message) and f.text == "c1"]
    history = store.room_history(store.room_id("general"))
    assert [m.text for m in history.messages] == ["a1", "b1"]


def test_failing_requests_count_like_bad_frames_and_log_few_tracebacks(
    login, core, monkeypatch, caplog
):
    """Review round two, finding 4: a request that keeps failing inside the server.

    Each gets ``server_error``; more than ten in a row end the session with
    ``too_many_errors``, like bad frames; and only the first few tracebacks are logged.
    """
    from chatsecure.protocol import Bye, Who
    from chatsecure.server.faults import TRACEBACKS_PER_WINDOW, FaultLog

    monkeypatch.setattr("chatsecure.server.json.session.request_failures", FaultLog())

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a fault inside the server")

    alice = login("alice")
    monkeypatch.setattr(core.rooms, "who", broken)
    for n in range(10):  # ten in a row: still served
        alice.send(Who(room="general", req=n))
        assert alice.outbox.next(Error, req=n).code == "server_error"
    alice.send(Send(room="general", text="a good request", req="ok"))
    assert alice.outbox.next(Ok, req="ok")
    for n in range(11):  # the eleventh in a row is one too many
        alice.send(Who(room="general", req=n))
        assert alice.outbox.next(Error, req=n).code == "server_error"
    assert alice.outbox.next(Bye).reason == "too_many_errors"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == TRACEBACKS_PER_WINDOW
