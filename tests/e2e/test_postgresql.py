"""The real server on PostgreSQL: two people chat in a room and directly, and the history
is still there after the server restarts."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import history, send_direct, send_room

ROOM = "on-postgres"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_chat_on_postgresql_survives_a_restart(
    database_url: str, server_factory: ServerFactory
) -> None:
    server = server_factory({"database": {"url": database_url}})
    assert "database: postgresql+psycopg://" in server.output()
    alice, bob = "alice", "bob"
    server.add_users([alice, bob])
    a, b = server.member(alice, ROOM), server.member(bob, ROOM)
    in_room = [send_room(a, ROOM, f"hello {n}") for n in range(3)]
    in_room.append(send_room(b, ROOM, "hi alice"))
    for client in (a, b):
        assert [client.expect("message", id=i)["room"] for i in in_room] == [ROOM] * 4
    direct = send_direct(b, alice, "just for you")
    assert a.expect("message", id=direct)["from"] == bob
    assert in_room == sorted(in_room)

    server.restart()
    reader = server.login(alice)
    page = history(reader, room=ROOM)
    assert [(m["id"], m["text"]) for m in page["messages"]] == list(
        zip(in_room, ["hello 0", "hello 1", "hello 2", "hi alice"], strict=True)
    )
    assert [m["text"] for m in history(reader, **{"with": bob})["messages"]] == ["just for you"]
    assert send_room(reader, ROOM, "after the restart") > max(*in_room, direct)
