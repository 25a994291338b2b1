"""Hostile IRC clients cannot stall JSON users: fuzzed lines, a client that never reads,
and connections that never finish their handshake or registration, all on the IRC port
of a real server while two JSON users keep talking."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import join, send_room
from tests.irc.client import IrcClients, IrcClosed, RawIrcClient
from tests.serverproc import HOST, free_port, password_of

pytestmark = pytest.mark.slow

IRC_PORT = free_port()
LONG_TEXT = "z" * 30_000
SERVER_CONFIG: dict[str, dict[str, Any]] = {
    "irc": {"enabled": True, "port": IRC_PORT},
    "limits": {"max_queued_bytes": 65_536, "max_text_chars": len(LONG_TEXT)},
}
ROOM = "irc-hostile"
COMMANDS = ["PRIVMSG", "JOIN", "PART", "NICK", "USER", "PASS", "CAP", "AUTHENTICATE",
            "CHATHISTORY", "WHO", "NAMES", "MODE", "TOPIC", "LIST", "PING", "BATCH"]  # fmt: skip
WORDS = ["#irc-hostile", "#", "*", ":", "LS", "REQ", "END", "302", "PLAIN", "+", "LATEST",
         "msgid=1", "timestamp=x", "0", "-1", "\x01ACTION", "@label=x", "a,b,c"]  # fmt: skip

irc_lines = st.one_of(
    st.lists(st.sampled_from(COMMANDS + WORDS), min_size=1, max_size=8).map(
        lambda words: " ".join(words).encode() + b"\r\n"
    ),
    st.binary(min_size=1, max_size=300).map(lambda b: b + b"\n"),
    st.binary(min_size=5000, max_size=6000),  # longer than any line, with or without an end
)


@pytest.fixture
def raw_irc(server: ServerProcess) -> Iterator[Callable[..., RawIrcClient]]:
    """Raw IRC clients of the module server's IRC port."""
    clients = IrcClients(server)
    yield clients.connect
    clients.close()


class Bystander:
    """Two JSON users in one room; ``check`` proves a message still goes through."""

    def __init__(self, server: ServerProcess) -> None:
        self.sender, self.receiver = (server.login(u) for u in server.new_users(2))
        join(self.sender, ROOM)
        join(self.receiver, ROOM)
        self.count = 0

    def check(self) -> None:
        self.count += 1
        text = f"still chatting {self.count}"
        message_id = send_room(self.sender, ROOM, text)
        assert self.receiver.expect("message", id=message_id)["text"] == text


@pytest.fixture
def bystander(server: ServerProcess) -> Bystander:
    return Bystander(server)


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(irc_lines, min_size=1, max_size=6), st.booleans())
def test_fuzzed_irc_lines_get_answers_or_a_goodbye_and_json_users_go_on(
    server: ServerProcess,
    bystander: Bystander,
    raw_irc: Callable[[], RawIrcClient],
    lines: list[bytes],
    logged_in: bool,
) -> None:
    attacker = raw_irc()
    if logged_in:
        user = server.new_user()
        attacker.sasl(user, password_of(user), "sasl")
    try:
        for line in lines:
            attacker.sock.sendall(line)
        attacker.sock.sendall(b"\r\nPING :barrier\r\n")
        attacker.expect("PONG", "chatsecure", "barrier")
    except (IrcClosed, OSError):
        assert attacker.seen, "closed without a word"
        assert attacker.seen[-1].command == "ERROR", attacker.seen[-5:]
    assert server.running, server.output()
    bystander.check()


def test_an_irc_client_that_never_reads_is_cut_off_and_json_users_go_on(
    server: ServerProcess, bystander: Bystander, raw_irc: Callable[..., RawIrcClient]
) -> None:
    (sleeper_name,) = server.new_users(1)
    flooded = "irc-flooded"  # its own room: the long texts stay out of the bystanders' history
    join(bystander.sender, flooded)
    # A small receive buffer, so the server's queue for it fills sooner.
    sleeper = raw_irc(receive_buffer=4096)
    sleeper.sasl(sleeper_name, password_of(sleeper_name), "sasl")
    sleeper.send(f"JOIN #{flooded}")
    sleeper.expect("366")  # from here on it never reads again
    bystander.sender.expect("member", room=flooded, user=sleeper_name, event="joined")
    for n in range(1, 501):  # at most 15 MB towards the sleeper
        send_room(bystander.sender, flooded, LONG_TEXT)
        if n % 10 == 0:
            bystander.check()
            queued = bystander.sender.take_queued()  # its own copies, and perhaps:
            if {"type": "presence", "user": sleeper_name, "status": "offline"} in queued:
                break
    else:
        raise AssertionError("the IRC client that never reads was never disconnected")
    assert "too slow" in server.output()


def test_half_open_handshakes_and_registrations_do_not_hold_up_json_users(
    server: ServerProcess, bystander: Bystander, raw_irc: Callable[[], RawIrcClient]
) -> None:
    silent = [socket.create_connection((HOST, IRC_PORT), timeout=5) for _ in range(30)]
    partial = [socket.create_connection((HOST, IRC_PORT), timeout=5) for _ in range(10)]
    try:
        for sock in partial:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello cut short
        bystander.check()
        unregistered = [raw_irc() for _ in range(10)]
        for client in unregistered:
            client.send("NICK half-done")
            client.send("CAP LS 302")  # and never CAP END, USER or a login
        bystander.check()
        for client in unregistered:
            client.send("PING :still")
            client.expect("PONG", "chatsecure", "still")
        bystander.check()
    finally:
        for sock in silent + partial:
            sock.close()


def test_no_tracebacks_in_the_log(server: ServerProcess) -> None:
    """Everything above was the peer's fault: nothing may have failed inside the server."""
    output = server.output()
    assert "Traceback" not in output, output[-4000:]
    assert " ERROR " not in output, output[-4000:]
