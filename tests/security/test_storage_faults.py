"""Storage that fails: full, read-only and locked databases.

The contract: the sender of a message that could not be stored gets ``server_error``
and never an ``ok``; nobody receives it; the server logs the fault, keeps serving reads
(``history``, ``who``) and, once the fault clears, stores the next message as usual.

How each fault is made, honestly and without a hook in the product:

* **locked**: another process's connection takes SQLite's write lock
  (``BEGIN EXCLUSIVE``) and holds it past the server's busy timeout (10 s). This is the
  real server subprocess, untouched.
* **full** and **read-only**: SQLite's ``max_page_count`` and ``query_only`` are
  per-connection settings, so setting them from the test's own connection would not
  reach the server's. These two run the real core, transport and store in this process
  (the objects ``chatsecure-server`` builds, over real TLS on loopback) and add, on the
  test side, a pool ``checkout`` listener that applies the fault to every connection the
  server takes from its pool. ``max_page_count`` at the current page count makes SQLite
  answer "database or disk is full" exactly as a full disk does; ``query_only`` makes it
  answer "attempt to write a readonly database" as a read-only file does (a ``chmod``
  would not do: these tests may run as root, who ignores file modes).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from chatsecure.config import load_settings
from chatsecure.server.host import ServerHost
from chatsecure.server.transport import server_context
from chatsecure.storage.db import BUSY_TIMEOUT_MS, make_engine
from tests.conftest import write_config
from tests.e2e.client import ChatClient
from tests.e2e.conftest import BASE_CONFIG, ServerFactory, merge_config, run_admin
from tests.e2e.helpers import assert_error, assert_ok_send, history, join
from tests.serverproc import HOST, free_port, password_of

pytestmark = pytest.mark.slow

ROOM = "faulty"
# 8 KB of UTF-8: more than a page, so a full database cannot squeeze it in. The marker
# must not reach the log, not even inside a database error's echo of the statement.
MARKER = "unstored-marker-7f3a"
TEXT = MARKER + "\u00e9" * (4_000 - len(MARKER))
UNLIMITED_PAGES = 1_073_741_823


class FaultySqlite:
    """Applies the current fault to every connection the server checks out of its pool."""

    def __init__(self) -> None:
        self.pragmas: dict[str, int] = {}
        self._lock = threading.Lock()

    def set(self, **pragmas: int) -> None:
        with self._lock:
            self.pragmas = dict(pragmas)

    def on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        with self._lock:
            pragmas = dict(self.pragmas)
        for name, value in pragmas.items():
            dbapi_connection.execute(f"PRAGMA {name}={int(value)}")


class InProcessServer:
    """``chatsecure-server``'s parts, started in this process on a migrated database."""

    def __init__(self, directory: Path, tls: dict[str, Path]) -> None:
        self.port = free_port()
        self.ca_file = tls["ca_file"]
        self.db_path = directory / "chat.db"
        config = merge_config(BASE_CONFIG, {"server": {"port": self.port}, "tls": dict(tls)}, {})
        self.config = write_config(directory, **config)
        run_admin(self.config, "migrate")
        self.users = [f"f{n}" for n in range(3)]
        csv = directory / "users.csv"
        rows = ["username,password", *(f"{u},{password_of(u)}" for u in self.users)]
        csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
        run_admin(self.config, "import-users", str(csv))
        # Migrations leave free pages behind; without them every new row needs a new page.
        with sqlite3.connect(self.db_path) as db:
            db.execute("VACUUM")
        settings = load_settings(self.config)
        self.engine = make_engine(settings.database.url, settings.database.synchronous)
        self.faults = FaultySqlite()
        event.listen(self.engine, "checkout", self.faults.on_checkout)
        self.host = ServerHost(settings, self.engine, server_context(settings.tls))
        self.host.start()
        self.clients: list[ChatClient] = []

    def login(self, user: str) -> ChatClient:
        client = ChatClient(HOST, self.port, self.ca_file)
        self.clients.append(client)
        client.login_and_settle(user, password_of(user))
        return client

    def page_count(self) -> int:
        with sqlite3.connect(self.db_path) as db:
            (pages,) = db.execute("PRAGMA page_count").fetchone()
        return int(pages)

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.host.stop()


@pytest.fixture
def in_process(tmp_path: Path, tls_files: dict[str, Path]) -> Iterator[InProcessServer]:
    server = InProcessServer(tmp_path, tls_files)
    yield server
    server.stop()


def check_fault_contract(
    sender: ChatClient, reader: ChatClient, reader_name: str, fault_on: Any, fault_off: Any
) -> tuple[int, int]:
    """Send into a broken store, check every rule, clear it, send again. Returns the ids."""
    join(sender, ROOM)
    join(reader, ROOM)
    before = assert_ok_send(sender.request({"type": "send", "room": ROOM, "text": "before"}))
    reader.expect("message", id=before)

    fault_on()
    reply = sender.request({"type": "send", "room": ROOM, "text": TEXT, "req": "lost"}, 30)
    assert_error(reply, "server_error", "lost")
    assert not [f for f in sender.sync() if f.get("req") == "lost"], "a second reply"
    # Nobody was told of a message that does not exist.
    assert not [f for f in reader.sync() if f["type"] == "message"]
    # Reads still work.
    page = history(reader, room=ROOM)
    assert [m["text"] for m in page["messages"]][-1] == "before"
    who = reader.request({"type": "who", "room": ROOM})
    assert {m["user"] for m in who["members"]} >= {reader_name}

    fault_off()
    after = assert_ok_send(sender.request({"type": "send", "room": ROOM, "text": "after"}, 30))
    assert reader.expect("message", id=after)["text"] == "after"
    texts = [m["text"] for m in history(reader, room=ROOM)["messages"]]
    assert texts[-2:] == ["before", "after"], texts[-3:]
    return before, after


@pytest.mark.parametrize("fault", ["full", "read-only"], ids=["full-disk", "read-only-database"])
def test_a_failing_store_refuses_the_send_keeps_serving_reads_and_recovers(
    in_process: InProcessServer, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    sender_name, reader_name, _ = in_process.users
    sender, reader = in_process.login(sender_name), in_process.login(reader_name)

    def fault_on() -> None:
        if fault == "full":
            in_process.faults.set(max_page_count=in_process.page_count())
        else:
            in_process.faults.set(query_only=1)

    def fault_off() -> None:
        in_process.faults.set(max_page_count=UNLIMITED_PAGES, query_only=0)

    with caplog.at_level(logging.INFO):
        check_fault_contract(sender, reader, reader_name, fault_on, fault_off)
    failures = [r for r in caplog.records if "could not store" in r.getMessage()]
    assert failures, "the fault was not logged"
    assert failures[0].levelno >= logging.ERROR
    assert MARKER not in caplog.text  # the log names the fault, not the message


def test_a_login_during_a_storage_fault_still_gets_in_to_read(
    in_process: InProcessServer,
) -> None:
    """Reading needs no writes: a user who logs in while the disk is full can catch up."""
    writer_name, late_name, _ = in_process.users
    writer = in_process.login(writer_name)
    join(writer, ROOM)
    message_id = assert_ok_send(writer.request({"type": "send", "room": ROOM, "text": "news"}))
    late = in_process.login(late_name)
    join(late, ROOM)
    late.close()
    in_process.faults.set(query_only=1)
    client = ChatClient(HOST, in_process.port, in_process.ca_file)
    in_process.clients.append(client)
    welcome = client.login(late_name, password_of(late_name))
    assert welcome["rooms"] == [ROOM]
    room_history = client.expect("history", room=ROOM)
    assert [m["id"] for m in room_history["messages"]] == [message_id]


def test_wrong_passwords_during_a_storage_fault_are_refused_and_still_throttled(
    in_process: InProcessServer,
) -> None:
    """The store cannot count failures now: the reply must not change, nor the throttle."""
    _, _, victim = in_process.users
    in_process.faults.set(query_only=1)
    client = ChatClient(HOST, in_process.port, in_process.ca_file)
    in_process.clients.append(client)
    for _ in range(5):
        reply = client.request({"type": "login", "username": victim, "password": "guess-1234"})
        assert_error(reply, "auth_failed")
    reply = client.request({"type": "login", "username": victim, "password": password_of(victim)})
    assert_error(reply, "rate_limited")


def test_a_locked_database_refuses_the_send_keeps_serving_reads_and_recovers(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    sender_name, reader_name = server.new_users(2)
    sender, reader = server.login(sender_name), server.login(reader_name)
    holder = sqlite3.connect(server.db_path, isolation_level=None, timeout=BUSY_TIMEOUT_MS)

    def fault_on() -> None:
        holder.execute("BEGIN EXCLUSIVE")  # the write lock, held past the busy timeout

    def fault_off() -> None:
        holder.execute("ROLLBACK")

    try:
        check_fault_contract(sender, reader, reader_name, fault_on, fault_off)
    finally:
        holder.close()
    output = server.output()
    assert "could not store 1 message(s)" in output
    assert "database is locked" in output
    assert MARKER not in output
    assert server.running
