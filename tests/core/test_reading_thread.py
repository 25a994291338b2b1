"""What a JSON session handles on the transport's reading thread, and what it sets aside.

The reading thread serves every client, so a session handles there only what never
waits (a message to a room the account is in, a ping); the first request that may wait
(bcrypt, the store) goes to ``Link.aside`` with everything behind it, in order.
"""

from __future__ import annotations

from collections.abc import Callable

from chatsecure.protocol import ClientPing, Error, History, Ok, Send, ServerPong
from chatsecure.protocol.events import Login
from tests.core.conftest import PASSWORD, Client


def logged_in(client: Client) -> bool:
    return client.port.logged_in


def test_a_login_is_set_aside_with_what_follows_it(connect: Callable[..., Client]) -> None:
    client = connect()
    client.outbox.held = []
    client.send(Login(username="alice", password=PASSWORD, req="login"), ClientPing(req="p"))
    assert len(client.outbox.held) == 1  # the login, which will run bcrypt
    assert not logged_in(client)

    client.outbox.held.pop()()
    assert logged_in(client)
    assert [type(f).__name__ for f in client.outbox.frames][-1:] == ["ServerPong"]


def test_room_messages_and_pings_are_handled_inline(login: Callable[..., Client]) -> None:
    alice = login("alice")
    alice.outbox.held = []
    alice.send(Send(req="m1", room="general", text="hi"), ClientPing(req="p"))
    assert alice.outbox.held == []
    alice.outbox.next(ServerPong, req="p")
    alice.outbox.next(Ok, req="m1")


def test_what_reads_the_store_is_set_aside(login: Callable[..., Client]) -> None:
    alice = login("alice")
    alice.outbox.held = []
    alice.send(
        Send(req="m", room="general", text="before it"),
        Send(req="d", to="bob", text="direct"),  # the store names the peer
        Send(req="m2", room="general", text="behind it"),
        History(req="h", room="general"),
        Send(req="x", room="nowhere", text="not a member"),
    )
    assert len(alice.outbox.held) == 1  # the direct message, and the rest behind it

    alice.outbox.held.pop()()
    assert alice.outbox.held == []  # set-aside work handles everything after it there
    for req in ("m", "d", "m2"):
        alice.outbox.next(Ok, req=req)  # stored in the order sent
    assert [f.code for f in alice.outbox.frames if isinstance(f, Error)] == ["no_such_room"]
