"""chatsecure-admin against a running server: an online backup, a refused restore, unlock,
and rooms made and moderated from the CLI reaching the sessions online.

The admin runs in this process through its entry function (injected streams), the
server as the real program in its own.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.admin.conftest import Admin
from tests.e2e.client import ChatClient
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import assert_error, history, join, send_room
from tests.serverproc import password_of

SENDERS = 10
ADMIN_CHANGE_TIMEOUT = 10.0  # "within seconds": the server polls the journal every two
PIPELINE = 4
ACKS_BEFORE_BACKUP = 500
DEADLINE = 30.0
# The module's server (backup and unlock); restore stops and starts a server of its own.
SERVER_CONFIG = {"auth": {"max_failures": 3, "failure_window": 900}}


class Acks:
    """Every ``ok`` the senders got: message id -> text, and which senders have any."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_id: dict[int, str] = {}
        self.senders: set[str] = set()
        self.enough = threading.Event()

    def add(self, message_id: int, text: str, sender: str) -> None:
        with self.lock:
            self.by_id[message_id] = text
            self.senders.add(sender)
            if len(self.by_id) >= ACKS_BEFORE_BACKUP and len(self.senders) == SENDERS:
                self.enough.set()

    def snapshot(self) -> dict[int, str]:
        with self.lock:
            return dict(self.by_id)


def keep_sending(
    client: ChatClient, room: str, sender: str, acks: Acks, stop: threading.Event
) -> None:
    sent = 0
    while not stop.is_set():
        reqs = [f"{sender}-{sent + n}" for n in range(PIPELINE)]
        for req in reqs:
            client.send({"type": "send", "room": room, "text": req, "req": req})
        for req in reqs:
            reply = client.expect(None, 10, req=req)
            assert reply["type"] == "ok", reply
            acks.add(reply["id"], req, sender)
        sent += PIPELINE


def _stored(path: Path) -> tuple[str, dict[int, str]]:
    with sqlite3.connect(path) as db:
        (integrity,) = db.execute("PRAGMA integrity_check").fetchone()
        messages = dict(db.execute("SELECT id, text FROM messages"))
    return str(integrity), messages


def test_an_online_backup_while_ten_people_chat_holds_every_acknowledged_message(
    server: ServerProcess, tmp_path: Path
) -> None:
    admin = Admin(server.config)
    names = [f"sender{n}" for n in range(SENDERS)]
    server.add_users(names)
    clients = [server.member(name, "busy") for name in names]
    acks, stop = Acks(), threading.Event()
    target = tmp_path / "online.db"
    with ThreadPoolExecutor(SENDERS) as pool:
        senders = [
            pool.submit(keep_sending, client, "busy", name, acks, stop)
            for client, name in zip(clients, names, strict=True)
        ]
        try:
            assert acks.enough.wait(DEADLINE), "the senders never got going"
            acknowledged = acks.snapshot()
            result = admin("backup", str(target))
            after = len(acks.snapshot())
        finally:
            stop.set()
        for sender in senders:
            sender.result(DEADLINE)  # no sender saw an error, during the backup or after
    assert result.code == 0, result.err
    assert after >= len(acknowledged)
    integrity, stored = _stored(target)
    assert integrity == "ok"
    missing = {i: text for i, text in acknowledged.items() if stored.get(i) != text}
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged messages missing"
    assert server.running


def test_restore_waits_for_the_server_to_stop(server_factory: ServerFactory, tmp_path) -> None:
    server = server_factory()
    admin = Admin(server.config)
    name = "keeper"
    server.add_users([name])
    client = server.member(name, "kept")
    kept = send_room(client, "kept", "before the backup")
    saved = tmp_path / "saved.db"
    assert admin("backup", str(saved)).code == 0
    send_room(client, "kept", "after the backup")

    refused = admin("restore", str(saved))
    assert refused.code == 1
    assert "is in use: stop chatsecure-server" in refused.err
    assert send_room(client, "kept", "still serving") > kept

    server.stop()
    server.close_clients()
    restored = admin("restore", str(saved))
    assert restored.code == 0, restored.err
    assert not Path(f"{server.db_path}-wal").exists()
    server.start()
    reader = server.login(name)
    history = reader.request({"type": "history", "room": "kept"})
    assert [m["text"] for m in history["messages"]] == ["before the backup"]


def test_users_shows_the_servers_lock_and_unlock_lifts_it(server: ServerProcess) -> None:
    admin = Admin(server.config)
    name = "forgetful"
    server.add_users([name])
    for _ in range(3):
        reply = server.connect().request(
            {"type": "login", "username": name, "password": "wrong guess"}
        )
        assert_error(reply, "auth_failed")
    _assert_refused(server, name)
    (row,) = (line for line in admin("users").out.splitlines() if line.split()[0] == name)
    assert re.search(r"locked until (\d{4}-\d\d-\d\d )?\d\d:\d\d$", row), row

    result = admin("unlock", name)
    assert result.code == 0, result.err
    assert server.connect().login(name, password_of(name))["user"] == name
    (row,) = (line for line in admin("users").out.splitlines() if line.split()[0] == name)
    assert row.endswith("active")


def _assert_refused(server: ServerProcess, name: str) -> None:
    """Even the right password is refused unchecked while the account is locked."""
    reply = server.connect().request(
        {"type": "login", "username": name, "password": password_of(name)}
    )
    assert_error(reply, "rate_limited")


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
def test_a_room_the_cli_makes_for_an_online_owner_is_theirs_on_every_session(
    server: ServerProcess, private: bool
) -> None:
    owner, guest = server.new_users(2)
    room = f"cliroom-{'p' if private else 'o'}"
    sessions = [server.login(owner), server.login(owner)]
    made = Admin(server.config)("room", "create", room, *["--private"] * private, "--owner", owner)
    assert made.code == 0, made.err
    for client in sessions:  # told as by a join of their own, unasked
        joined = client.expect("joined", ADMIN_CHANGE_TIMEOUT, room=room)
        assert "req" not in joined
        assert (joined["role"], joined["private"]) == ("owner", private)
        client.expect("history", room=room)
        who = client.expect("who", room=room)
        assert [(m["user"], m["role"]) for m in who["members"]] == [(owner, "owner")]
    first, second = sessions
    send_room(first, room, "x")
    second.expect("message", room=room, text="x")
    assert history(second, room=room)["messages"][-1]["text"] == "x"
    assert second.request({"type": "who", "room": room})["type"] == "who"
    assert first.request({"type": "invite", "room": room, "user": guest})["type"] == "ok"
    later = server.login(owner)  # a new session follows the room from its welcome on
    send_room(later, room, "from a new session")
    guest_client = server.login(guest)
    join(guest_client, room)

    admin = Admin(server.config)
    assert admin("room", "topic", room, "on call").code == 0
    assert admin("room", "role", room, guest, "moderator").code == 0
    for client in (*sessions, later, guest_client):
        topic = client.expect("topic", ADMIN_CHANGE_TIMEOUT, room=room)
        assert (topic["topic"], topic["by"]) == ("on call", "(admin)")
        client.expect("role", ADMIN_CHANGE_TIMEOUT, room=room, user=guest, role="moderator")
