"""Finding 2: clients that never read must not hold the server's memory.

The attack of the review: sessions with a tiny receive buffer each ask for
``history limit 500`` of a room of 4,000-character messages, again and again, and
never read. Before the fix each held ~16 MiB (RSS 211 -> 532 MiB with 20), with no
total cap and no log line. Now one page carries at most ``PAGE_TEXT_CHARS`` of text,
all connections together share ``max_queued_bytes_total``, a queue that does not
empty within ``drain_timeout`` is dropped, and ``max_sessions_per_user`` caps the
sessions of one account.
"""

from __future__ import annotations

import json
import socket
import ssl
import statistics
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.client import tls_context
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import assert_error, join, send_room
from tests.security.conftest import client_from
from tests.serverproc import HOST, password_of

pytestmark = pytest.mark.slow

ROOM = "archive"
# Two bytes of UTF-8 a character: as heavy as the review's texts, and more.
LONG_TEXT = "é" * 4000
STORED = 500
ATTACKERS = 50
ACCOUNTS = 5  # ten sessions each: the default max_sessions_per_user
REQUESTS_EACH = 40  # 10 MiB of replies each: more than the kernel's socket buffers take
DRAIN_TIMEOUT = 4.0
RSS_GROWTH_LIMIT = 64 * 1024 * 1024
CONFIG = {
    "limits": {
        # The room is filled quickly by one user; the attack needs none of this.
        "messages_per_second": 10_000,
        "message_burst": 10_000,
        "drain_timeout": DRAIN_TIMEOUT,
    },
    "history": {"on_login": 0},  # so every attacker gets in without reading its login
}
SERVER_CONFIG = CONFIG


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def never_reading_session(server: ServerProcess, user: str, source: str) -> ssl.SSLSocket:
    """A logged-in session with a 4 KiB receive buffer that asks for pages and never reads."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.bind((source, 0))
    raw.settimeout(10)
    raw.connect((HOST, server.port))
    sock = tls_context(server.ca_file).wrap_socket(raw, server_hostname="localhost")
    frames = [{"type": "login", "username": user, "password": password_of(user), "req": 1}]
    frames += [
        {"type": "history", "room": ROOM, "limit": 500, "req": n + 2} for n in range(REQUESTS_EACH)
    ]
    sock.sendall(b"".join(json.dumps(f).encode() + b"\n" for f in frames))
    return sock


class Chatters:
    """An ordinary pair in another room: one sends, the other measures each round trip."""

    def __init__(self, server: ServerProcess, sender: str, receiver: str) -> None:
        self.sender = client_from(server, "127.0.1.1")
        self.sender.login_and_settle(sender, password_of(sender))
        join(self.sender, "lounge")
        self.receiver = client_from(server, "127.0.1.2")
        self.receiver.login_and_settle(receiver, password_of(receiver))
        join(self.receiver, "lounge")
        self.round_trips: list[float] = []

    def exchange(self, text: str) -> None:
        started = time.monotonic()
        sent = send_room(self.sender, "lounge", text)
        self.receiver.expect("message", id=sent, timeout=10)
        self.round_trips.append(time.monotonic() - started)


def test_never_reading_sessions_stay_within_the_memory_budget(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(CONFIG)
    filler, sender, receiver, *owners = server.new_users(3 + ACCOUNTS)
    writer = server.login(filler)
    join(writer, ROOM)
    for _ in range(STORED):
        writer.send({"type": "send", "room": ROOM, "text": LONG_TEXT})
    writer.request({"type": "history", "room": ROOM, "limit": 1})  # after every ok
    for owner in owners:
        join(server.login(owner), ROOM)
    server.close_clients()
    chatters = Chatters(server, sender, receiver)
    for n in range(5):
        chatters.exchange(f"warm-up {n}")
    quiet = statistics.median(chatters.round_trips)
    assert server.process is not None
    pid = server.process.pid
    idle = rss_bytes(pid)

    peak = idle
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    attackers = [
        never_reading_session(server, owners[n % ACCOUNTS], f"127.0.2.{n + 1}")
        for n in range(ATTACKERS)
    ]
    try:
        for n in range(20):
            chatters.exchange(f"under attack {n}")
            time.sleep(0.1)
        time.sleep(DRAIN_TIMEOUT + 2)  # every stalled queue is past its deadline
        for n in range(5):
            chatters.exchange(f"after {n}")
    finally:
        done.set()
        watcher.join()
        for sock in attackers:
            sock.close()

    growth = peak - idle
    print(
        f"idle RSS {idle / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB "
        f"(+{growth / 2**20:.1f}); round trip quiet {quiet * 1000:.1f} ms, under attack "
        f"median {statistics.median(chatters.round_trips[5:25]) * 1000:.1f} ms"
    )
    log = server.output()
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB"
    drops = log.count("too slow to read its frames")
    assert drops >= ATTACKERS // 2, log[-3000:]
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:3000]


def test_an_account_has_at_most_max_sessions_per_user(server_factory: ServerFactory) -> None:
    server = server_factory({"limits": {"max_sessions_per_user": 3}})
    user = server.new_user()
    sessions = [server.login(user) for _ in range(3)]
    refused = server.connect().request(
        {"type": "login", "username": user, "password": password_of(user)}
    )
    assert_error(refused, "not_allowed")
    sessions[0].close()
    time.sleep(0.5)
    assert server.connect().login(user, password_of(user))["user"] == user


def test_one_history_page_is_bounded_and_pages_on(server: ServerProcess) -> None:
    user = server.new_user()
    client = server.login(user)
    room = "big-pages"
    join(client, room)
    ids = [send_room(client, room, LONG_TEXT) for _ in range(40)]

    def page(**bound: int) -> tuple[list[int], bool]:
        reply = client.request({"type": "history", "room": room, "limit": 500, **bound})
        got = [m["id"] for m in reply["messages"]]
        assert 0 < len(got) < 40  # cut well short of the 500 asked for
        assert sum(len(m["text"]) for m in reply["messages"]) <= 64 * 1024
        return got, reply["more"]

    newest, more = page()  # the newest messages, then older pages before them
    assert more
    assert newest == ids[-len(newest) :]
    seen = newest
    while more:
        older, more = page(before=seen[0])
        seen = older + seen
    assert seen == ids
    seen, more = page(after=0)  # and the other way, oldest first
    while more:
        newer, more = page(after=seen[-1])
        seen += newer
    assert seen == ids
