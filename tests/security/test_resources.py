"""Resource attacks: hundreds of connections that hold on without doing their part.

At once, against one server with short timeouts: TCP connections that never start TLS,
that send half a ClientHello, that dribble a ClientHello a byte at a time; TLS
connections that never log in, or dribble a login a byte at a time; logged-in clients
that never read while a flood is sent to their room. Each must be dropped by its own
timeout or bound, and all the while an ordinary pair of users keeps chatting: every
message arrives, with its delivery latency measured and bounded generously.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.client import ChatClient
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import assert_ok_send, join
from tests.security.conftest import client_from
from tests.serverproc import HOST, password_of

pytestmark = pytest.mark.slow

HANDSHAKE_TIMEOUT = 1.0
LOGIN_TIMEOUT = 1.0
# The housekeeping thread looks once a second; a little more for a loaded machine.
SLACK = 3.0
SILENT, HALF_HELLO, HELLO_DRIBBLERS = 100, 40, 40
NEVER_LOGIN, LOGIN_DRIBBLERS, NEVER_READ = 60, 20, 10
BIG_TEXT = "z" * 30_000
CONFIG = {
    "tls": {"handshake_timeout": HANDSHAKE_TIMEOUT},
    "limits": {
        "login_timeout": LOGIN_TIMEOUT,
        "max_queued_bytes": 65_536,
        "max_text_chars": len(BIG_TEXT),
        "max_connections": 1_000,
        "max_connections_per_address": 1_000,
        "max_unauthenticated": 1_000,
        "max_unauthenticated_per_address": 1_000,
    },
}


def client_hello() -> bytes:
    """The first flight of a real TLS client, to send a byte at a time."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the server's reply
        tls.do_handshake()
    return outgoing.read()


class RawAttackers:
    """Plain TCP sockets, watched for the moment the server closes each."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.opened: dict[socket.socket, float] = {}
        self.closed: dict[socket.socket, float] = {}

    def open(self, first_bytes: bytes = b"", source: str | None = None) -> socket.socket:
        """A connection (from ``source``, a 127.x.y.z address, if given)."""
        bind = (source, 0) if source is not None else None
        sock = socket.create_connection((HOST, self.port), timeout=5, source_address=bind)
        if first_bytes:
            sock.sendall(first_bytes)
        sock.setblocking(False)
        self.opened[sock] = time.monotonic()
        self.selector.register(sock, selectors.EVENT_READ)
        return sock

    def poll(self, timeout: float = 0.0) -> None:
        for key, _ in self.selector.select(timeout):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(4096)  # at most a TLS alert, then EOF
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self.closed[sock] = time.monotonic()
                self.selector.unregister(sock)

    def lifetimes(self) -> list[float]:
        return [self.closed[s] - self.opened[s] for s in self.closed]

    def close(self) -> None:
        for sock in self.opened:
            sock.close()
        self.selector.close()


class Dribbler(threading.Thread):
    """Sends one byte every ``interval`` on each target until it fails or time is up."""

    def __init__(self, targets: list[tuple[Callable[[bytes], Any], bytes]], interval: float):
        super().__init__(daemon=True)
        self.targets = targets
        self.interval = interval
        self.stop = threading.Event()

    def run(self) -> None:
        live = list(self.targets)
        position = 0
        while live and not self.stop.wait(self.interval):
            still = []
            for send, data in live:
                if position < len(data):
                    try:
                        send(data[position : position + 1])
                    except (OSError, ValueError):
                        continue  # the server cut it: that is the point
                still.append((send, data))
            live = still
            position += 1


def flood(sender: ChatClient, room: str, sleepers: list[ChatClient], done: threading.Event) -> int:
    """Big messages to the sleepers' room until the server has dropped them all."""
    sent = 0
    while not done.is_set() and sent < 300:  # at most ~9 MB queued towards each sleeper
        assert_ok_send(sender.request({"type": "send", "room": room, "text": BIG_TEXT}))
        sender.take_queued()
        sent += 1
        if sent % 10 == 0:
            who = sender.request({"type": "who", "room": room})
            sleeping = {c.user for c in sleepers}
            if not any(m["online"] for m in who["members"] if m["user"] in sleeping):
                break
    return sent


def test_hundreds_of_stalling_connections_are_dropped_while_others_chat(
    server_factory: ServerFactory,
) -> None:
    server: ServerProcess = server_factory(CONFIG)
    names = server.new_users(3 + NEVER_READ)
    talker, listener, flooder = (server.login(n) for n in names[:3])
    for client in (talker, listener):
        join(client, "lively")
    sleepers = []
    for name in names[3:]:
        sleeper = server.connect(receive_buffer=4096)
        sleeper.login_and_settle(name, password_of(name))
        join(sleeper, "flooded")
        sleepers.append(sleeper)  # from here on they never read
    join(flooder, "flooded")

    raw = RawAttackers(server.port)
    hello = client_hello()
    never_login: list[ChatClient] = []
    try:
        started = time.monotonic()
        for _ in range(SILENT):
            raw.open()
        for _ in range(HALF_HELLO):
            raw.open(hello[: len(hello) // 2])
        hello_dribblers = [raw.open() for _ in range(HELLO_DRIBBLERS)]
        never_login = [server.connect() for _ in range(NEVER_LOGIN + LOGIN_DRIBBLERS)]
        login_line = b'{"type":"login","username":"' + names[0].encode() + b'","password":"x"}\n'
        dribbler = Dribbler(
            [(s.send, hello) for s in hello_dribblers]
            + [(c.send_raw, login_line) for c in never_login[NEVER_LOGIN:]],
            interval=0.25,
        )
        dribbler.start()
        flood_done = threading.Event()
        flooding = threading.Thread(
            target=flood, args=(flooder, "flooded", sleepers, flood_done), daemon=True
        )
        flooding.start()

        # Meanwhile the ordinary users chat, until every raw attacker has been dropped.
        latencies: list[float] = []
        total = SILENT + HALF_HELLO + HELLO_DRIBBLERS
        deadline = started + HANDSHAKE_TIMEOUT + LOGIN_TIMEOUT + 3 * SLACK
        while len(raw.closed) < total or len(latencies) < 20:
            assert time.monotonic() < deadline, f"{total - len(raw.closed)} raw attackers linger"
            sent_at = time.monotonic()
            message_id = assert_ok_send(
                talker.request({"type": "send", "room": "lively", "text": f"msg {len(latencies)}"})
            )
            listener.expect("message", id=message_id)
            latencies.append(time.monotonic() - sent_at)
            talker.take_queued()
            raw.poll()
        flooding.join(30)
        flood_done.set()
        dribbler.stop.set()
        dribbler.join(5)
    finally:
        raw.close()

    # Every raw attacker fell to the handshake timeout (dribbling a byte did not extend it).
    assert max(raw.lifetimes()) < HANDSHAKE_TIMEOUT + SLACK, max(raw.lifetimes())
    # Every TLS connection that never logged in got `bye` `login_timeout`.
    for client in never_login:
        frames = client.wait_closed(LOGIN_TIMEOUT + SLACK)
        assert frames[-1] == {"type": "bye", "reason": "login_timeout"}, frames[-3:]
    # Every client that never read was cut off as a slow consumer.
    for sleeper in sleepers:
        frames = sleeper.wait_closed(10)
        byes = [f for f in frames if f["type"] == "bye"]
        assert byes in ([], [{"type": "bye", "reason": "slow_consumer"}]), byes
    assert server.output().count("too slow to read its frames") == NEVER_READ
    # And the ordinary users never noticed: every message arrived, promptly.
    assert statistics.median(latencies) < 0.5, latencies
    assert max(latencies) < 3.0, latencies
    after = assert_ok_send(talker.request({"type": "send", "room": "lively", "text": "still here"}))
    assert listener.expect("message", id=after)["text"] == "still here"
    assert server.running


def test_connection_bounds_hold_under_a_flood_of_connects(server_factory: ServerFactory) -> None:
    """Past max_connections_per_address new sockets are refused at once, and others get in."""
    server = server_factory(
        {
            "tls": {"handshake_timeout": HANDSHAKE_TIMEOUT},
            "limits": {"max_connections": 1_000, "max_connections_per_address": 50},
        }
    )
    user = server.new_user()
    raw = RawAttackers(server.port)
    try:
        for _ in range(200):
            raw.open()
        # 150 are refused (closed at once, not after the handshake timeout).
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT / 2
        while len(raw.closed) < 150 and time.monotonic() < deadline:
            raw.poll(0.05)
        assert len(raw.closed) >= 150, len(raw.closed)
        # Another address is not counted against this one.
        other = client_from(server, "127.0.0.9")
        assert other.login(user, password_of(user))["user"] == user
    finally:
        raw.close()


def test_connections_that_never_log_in_leave_slots_for_logins(
    server_factory: ServerFactory,
) -> None:
    """200 silent TCP connections from 20 addresses, more than max_connections allows.

    Each per-address budget of unauthenticated connections admits 2, so 160 are refused
    at once and 40 hold on (for their whole handshake deadline, long here), which is
    still within the unauthenticated budget and below max_connections: the users logged
    in before keep chatting, and new logins, several from one address, get in.
    """
    addresses, each, per_address = 20, 10, 2
    server = server_factory(
        {
            "tls": {"handshake_timeout": 60},
            "limits": {
                "max_connections": 60,
                "max_connections_per_address": 60,
                "max_unauthenticated": 50,
                "max_unauthenticated_per_address": per_address,
            },
        }
    )
    before, *newcomers = server.new_users(6)
    logged_in = server.login(before)
    join(logged_in, "still-here")
    raw = RawAttackers(server.port)
    try:
        for n in range(1, addresses + 1):
            for _ in range(each):
                raw.open(source=f"127.0.8.{n}")
        refused = addresses * (each - per_address)
        deadline = time.monotonic() + 10
        while len(raw.closed) < refused and time.monotonic() < deadline:
            raw.poll(0.05)
        raw.poll(0.5)
        assert len(raw.closed) == refused  # the rest still hold their slots
        assert_ok_send(logged_in.request({"type": "send", "room": "still-here", "text": "hi"}))
        # A login leaves the budget: more sessions from one address than it admits at once.
        for user in newcomers:
            client = client_from(server, "127.0.9.1")
            assert client.login(user, password_of(user))["user"] == user
        assert f"max_unauthenticated_per_address ({per_address}) reached" in server.output()
    finally:
        raw.close()
