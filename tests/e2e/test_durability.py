"""SIGKILL during concurrent sends loses no acknowledged message and leaves a sound database."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.e2e.client import ChatClient
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import join

PIPELINE = 8
KILL_AFTER_ACKS = 300
DEADLINE = 30.0


class AckLog:
    """The acks every sender has seen, shared across sender threads.

    ``enough`` is set once there are ``KILL_AFTER_ACKS`` acks and every one of the
    ``senders`` has some, so a kill always lands while all of them are sending (on a
    loaded machine one sender may start late).
    """

    def __init__(self, senders: int) -> None:
        self._lock = threading.Lock()
        self._senders = senders
        self._labels: set[str] = set()
        self.acked: dict[int, str] = {}
        self.enough = threading.Event()

    def add(self, message_id: int, text: str) -> None:
        with self._lock:
            self.acked[message_id] = text
            self._labels.add(text.rsplit("-", 1)[0])
            if len(self.acked) >= KILL_AFTER_ACKS and len(self._labels) == self._senders:
                self.enough.set()


def keep_sending(client: ChatClient, target: dict[str, Any], label: str, log: AckLog) -> int:
    """Send until the connection dies; every ``ok`` goes into ``log``. Returns the ack count."""
    count = 0
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            reqs = [f"{label}-{count + n}" for n in range(PIPELINE)]
            for req in reqs:
                client.send({"type": "send", **target, "text": req, "req": req})
            for req in reqs:
                reply = client.expect(None, 10, req=req)
                assert reply["type"] == "ok", reply
                log.add(reply["id"], req)
                count += 1
    except (AssertionError, OSError):
        # The kill: the connection closed or reset. A frame ending early is no ack.
        pass
    return count


def stored_messages(client: ChatClient, **conversation: Any) -> dict[int, str]:
    """Every message of a room or conversation, paged backwards from the latest."""
    stored: dict[int, str] = {}
    before: dict[str, int] = {}
    while True:
        reply = client.request({"type": "history", **conversation, **before, "limit": 500})
        stored.update({m["id"]: m["text"] for m in reply["messages"]})
        if not reply["more"]:
            return stored
        before = {"before": reply["messages"][0]["id"]}


def integrity(server: ServerProcess) -> str:
    with sqlite3.connect(server.db_path) as db:
        (result,) = db.execute("PRAGMA integrity_check").fetchone()
    return str(result)


def test_sigkill_during_sends_loses_no_acknowledged_message(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    names = server.new_users(4)
    room = "durable"
    clients = [server.login(name) for name in names]
    for client in clients[:3]:
        join(client, room)
    targets = [({"room": room}, "r0"), ({"room": room}, "r1"), ({"to": names[3]}, "d2")]
    log = AckLog(len(targets))
    with ThreadPoolExecutor(len(targets)) as pool:
        futures = [
            pool.submit(keep_sending, client, target, label, log)
            for client, (target, label) in zip(clients, targets, strict=False)
        ]
        assert log.enough.wait(DEADLINE), "the senders never got going"
        server.kill()
        counts = [f.result(DEADLINE) for f in futures]
    assert all(counts), counts
    assert integrity(server) == "ok"

    server.restart()
    reader = server.login(names[0])
    stored = stored_messages(reader, room=room)
    stored.update(stored_messages(server.login(names[3]), **{"with": names[2]}))
    lost = {i: text for i, text in log.acked.items() if stored.get(i) != text}
    assert not lost, f"{len(lost)} of {len(log.acked)} acknowledged messages lost"

    # Ids keep increasing after the restart.
    reply = reader.request({"type": "send", "room": room, "text": "after the restart"})
    assert reply["id"] > max(log.acked)
