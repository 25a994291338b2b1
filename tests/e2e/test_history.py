"""History paging: latest, before, after, limit, the more flag, and who may read what."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.client import ChatClient
from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import assert_error, history, send_direct, send_room

ROOM = "history-main"
COUNT = 12


@pytest.fixture(scope="module")
def room_history(module_server: ServerProcess) -> tuple[str, list[int]]:
    """A member of ``ROOM`` and the ids of the ``COUNT`` messages it holds."""
    (user,) = module_server.new_users(1)
    client = module_server.member(user, ROOM)
    ids = [send_room(client, ROOM, f"message {n}") for n in range(COUNT)]
    client.close()
    module_server.clients.remove(client)
    return user, ids


@pytest.fixture
def reader(server: ServerProcess, room_history: tuple[str, list[int]]) -> ChatClient:
    return server.login(room_history[0])


@pytest.fixture
def ids(room_history: tuple[str, list[int]]) -> list[int]:
    return room_history[1]


def page(client: ChatClient, **fields: Any) -> tuple[list[int], bool]:
    reply = history(client, room=ROOM, **fields)
    assert reply["room"] == ROOM
    return [m["id"] for m in reply["messages"]], reply["more"]


def test_ids_increase_in_the_order_messages_were_stored(ids: list[int]) -> None:
    assert ids == sorted(ids)
    assert len(set(ids)) == COUNT


def test_latest(reader: ChatClient, ids: list[int]) -> None:
    assert page(reader, limit=5) == (ids[-5:], True)
    assert page(reader) == (ids, False)
    assert page(reader, limit=COUNT) == (ids, False)


def test_before(reader: ChatClient, ids: list[int]) -> None:
    assert page(reader, before=ids[5], limit=3) == (ids[2:5], True)
    assert page(reader, before=ids[3], limit=3) == (ids[0:3], False)
    assert page(reader, before=ids[0]) == ([], False)
    assert page(reader, before=ids[-1] + 1000, limit=2) == (ids[-2:], True)


def test_after(reader: ChatClient, ids: list[int]) -> None:
    assert page(reader, after=ids[5], limit=3) == (ids[6:9], True)
    assert page(reader, after=ids[8], limit=3) == (ids[9:12], False)
    assert page(reader, after=ids[-1]) == ([], False)
    assert page(reader, after=ids[0], limit=COUNT) == (ids[1:], False)


def test_paging_backwards_and_forwards_sees_every_message_once(
    reader: ChatClient, ids: list[int]
) -> None:
    backwards: list[int] = []
    got, more = page(reader, limit=5)
    backwards = got + backwards
    while more:
        got, more = page(reader, before=backwards[0], limit=5)
        backwards = got + backwards
    assert backwards == ids

    forwards, more = [ids[0]], True
    while more:
        got, more = page(reader, after=forwards[-1], limit=5)
        forwards += got
    assert forwards == ids


def test_messages_are_complete_and_oldest_first(reader: ChatClient, ids: list[int]) -> None:
    reply = history(reader, room=ROOM, limit=3)
    assert [m["text"] for m in reply["messages"]] == [f"message {n}" for n in range(9, 12)]
    for message in reply["messages"]:
        assert set(message) >= {"id", "ts", "from", "room", "text"}
        assert message["room"] == ROOM
        assert "to" not in message


def test_limit_bounds(reader: ChatClient, ids: list[int]) -> None:
    assert page(reader, limit=1) == (ids[-1:], True)
    assert page(reader, limit=500) == (ids, False)
    for bad in (0, -1, 501, "5", 2.5, True):
        reply = reader.request({"type": "history", "room": ROOM, "limit": bad, "req": "l"})
        assert_error(reply, "bad_request", "l")


@pytest.mark.parametrize(
    "fields",
    [
        {"room": ROOM, "before": 5, "after": 1},
        {"room": ROOM, "with": "someone"},
        {},
        {"room": ROOM, "before": 0},
        {"room": ROOM, "after": -3},
        {"room": ROOM, "before": "10"},
        {"room": 7},
        {"with": "not a name!"},
    ],
)
def test_malformed_history_requests(reader: ChatClient, fields: dict[str, Any]) -> None:
    reply = reader.request({"type": "history", **fields, "req": "bad"})
    assert_error(reply, "bad_request", "bad")


def test_default_limit_is_fifty(server: ServerProcess) -> None:
    user = server.new_user()
    client = server.member(user, "history-long")
    ids = [send_room(client, "history-long", f"n{n}") for n in range(55)]
    reply = history(client, room="history-long")
    assert [m["id"] for m in reply["messages"]] == ids[-50:]
    assert reply["more"] is True


def test_only_members_may_read_a_rooms_history(
    server: ServerProcess, room_history: tuple[str, list[int]]
) -> None:
    outsider = server.login(server.new_user())
    reply = outsider.request({"type": "history", "room": ROOM, "req": 6})
    assert_error(reply, "not_member", 6)


def test_direct_history_is_only_the_two_parties(server: ServerProcess) -> None:
    alice, bob, carol = server.new_users(3)
    a, b = server.login(alice), server.login(bob)
    ids = [send_direct(a, bob, "a1"), send_direct(b, alice, "b1"), send_direct(a, bob, "a2")]
    # Carol asking for "history with alice" gets her own conversation with alice: none.
    c = server.login(carol)
    reply = history(c, **{"with": alice})
    assert reply["with"] == alice
    assert reply["messages"] == []
    assert reply["more"] is False
    # The parties page it like a room.
    reply = history(b, **{"with": alice, "before": ids[2], "limit": 1})
    assert [m["id"] for m in reply["messages"]] == [ids[1]]
    assert reply["more"] is True
    reply = history(a, **{"with": bob, "after": ids[0]})
    assert [m["id"] for m in reply["messages"]] == ids[1:]
    assert reply["more"] is False
