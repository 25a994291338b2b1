"""``[history] retain_days``: the running server deletes what is older, and only that;
``search_compact_delay``: a deleted message's words leave the SQLite file by then."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.e2e.conftest import ServerFactory, ServerProcess
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


COMPACT_DELAY = 3.0
UNIQUE_WORD = "quetzalfjordwobble"


def _file_holds(server: ServerProcess, word: str) -> bool:
    """Whether the database's files hold the word anywhere, free pages included, after a
    checkpoint (which a reader of the server's may hold off: then it shows in the WAL)."""
    with sqlite3.connect(server.db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [Path(server.db_path), Path(f"{server.db_path}-wal")]
    return any(word.encode() in f.read_bytes() for f in files if f.exists())


def test_a_deleted_messages_words_leave_the_database_file_after_the_delay(
    server_factory: ServerFactory,
) -> None:
    server = server_factory({"history": {"search_compact_delay": COMPACT_DELAY}})
    client = server.member(server.new_user(), "erase")
    for n in range(300):  # the word's index entry in an older segment than its tombstone
        send_room(client, "erase", f"filler {n}")
    gone = send_room(client, "erase", f"the secret is {UNIQUE_WORD}")
    for n in range(300):
        send_room(client, "erase", f"more filler {n}")
    assert client.request({"type": "delete", "id": gone})["type"] == "ok"
    deleted_at = time.monotonic()
    assert _file_holds(server, UNIQUE_WORD)  # the text is gone; the index keeps the word
    while _file_holds(server, UNIQUE_WORD):
        assert time.monotonic() - deleted_at < COMPACT_DELAY + 10, "the index kept the word"
        time.sleep(0.5)
    assert time.monotonic() - deleted_at >= COMPACT_DELAY - 0.5  # not before its time
    found = client.request({"type": "search", "q": "filler"})
    assert found["type"] == "search"
    assert found["results"]
