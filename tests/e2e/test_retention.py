"""``[history] retain_days``: the running server deletes what is older, and only that."""

from __future__ import annotations

import sqlite3
import time

from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import history, send_room

DAY_MS = 86_400_000


def test_messages_past_their_days_are_deleted_while_chat_goes_on(
    server_factory: ServerFactory,
) -> None:
    server = server_factory({"history": {"retain_days": 2}})
    user = server.new_user()
    client = server.member(user, "keep")
    old = [send_room(client, "keep", f"old {n}") for n in range(3)]
    kept = send_room(client, "keep", "recent")
    with sqlite3.connect(server.db_path) as db:
        db.execute(
            f"UPDATE messages SET ts_ms = ts_ms - {3 * DAY_MS} WHERE id IN ({','.join('?' * 3)})",
            old,
        )
    server.restart()  # the first purge runs as the server starts
    client = server.member(user, "keep")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ids = [m["id"] for m in history(client, room="keep")["messages"]]
        if ids == [kept]:
            break
        time.sleep(0.2)
    assert ids == [kept]
    assert send_room(client, "keep", "still chatting") > kept
