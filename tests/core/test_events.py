"""Observers see what happens in the service; admin actions end sessions."""

from __future__ import annotations

from chatsecure.protocol import Bye, Join, Joined, Leave, Login, Ok, Send
from chatsecure.server.core import events


def test_observer_sees_the_life_of_a_session(core, connect, login):
    seen: list[events.ServerEvent] = []
    core.observers.subscribe(seen.append)
    alice = login("alice")
    alice.send(Join(room="dev", req=1))
    alice.outbox.next(Joined)
    alice.send(Send(room="dev", text="secret plans", req=2))
    ok = alice.outbox.next(Ok, req=2)
    alice.send(Leave(room="dev", req=3))
    alice.outbox.next(Ok, req=3)
    stranger = connect("192.0.2.7")
    stranger.send(Login(username="alice", password="guess guess", req=1))
    stranger.outbox.next()
    core.sessions.disconnect(alice.session.id)
    assert alice.outbox.next(Bye).reason == "kicked"
    core.observers.unsubscribe(seen.append)

    kinds = [type(e) for e in seen]
    assert kinds[:2] == [events.Connected, events.LoggedIn]
    assert events.RoomJoined("alice", "dev") in seen
    assert events.MessageStored(ok.id, "alice", "dev", None, "secret plans") in seen
    assert events.RoomLeft("alice", "dev") in seen
    assert events.LoginRefused("192.0.2.7", "alice", throttled=False) in seen
    assert events.Disconnected(alice.session.id, "alice", "127.0.0.1", "kicked") in seen
    assert all("guess" not in repr(e) for e in seen)


def test_disable_account_ends_its_sessions_at_once(core, login, store):
    bob = login("bob")
    core.sessions.disable_account("bob")
    assert bob.outbox.next(Bye, timeout=1).reason == "account_disabled"
    assert store.get_account("bob").disabled


def test_a_failing_observer_does_not_break_the_core(core, login):
    def broken(_event: events.ServerEvent) -> None:
        raise RuntimeError("observer bug")

    core.observers.subscribe(broken)
    alice = login("alice")
    alice.send(Send(room="general", text="still works", req=1))
    alice.outbox.next(Ok, req=1)
