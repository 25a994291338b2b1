"""Limits and liveness: message rate, connections per address, idle pings, slow consumers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.client import ChatClient, FrameTimeout
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import assert_error, assert_ok_send, join, send_room
from tests.serverproc import HOST, password_of


def test_messages_are_rate_limited_per_user(server_factory: ServerFactory) -> None:
    limited = server_factory({"limits": {"messages_per_second": 1, "message_burst": 3}})
    user, other = limited.new_users(2)
    room = "limits-rate"
    first, second = limited.login(user), limited.login(user)
    bystander = limited.login(other)
    join(first, room)
    join(bystander, room)
    sent = [send_room(first, room, f"burst {n}") for n in range(3)]

    reply = second.request({"type": "send", "room": room, "text": "one too many", "req": "r"})
    assert_error(reply, "rate_limited", "r")
    assert isinstance(reply["retry_after"], int)
    assert 1 <= reply["retry_after"] <= 2
    # Refused means not stored and not delivered.
    barrier = send_room(bystander, room, "other users are not limited")
    before, _ = bystander.frames_until("message", id=barrier)
    assert [m["id"] for m in before if m["type"] == "message"] == sent
    page = bystander.request({"type": "history", "room": room})
    assert [m["text"] for m in page["messages"]][-1] == "other users are not limited"
    assert "one too many" not in [m["text"] for m in page["messages"]]

    # Tokens come back at the configured rate.
    deadline = time.monotonic() + 3
    while True:
        reply = first.request({"type": "send", "room": room, "text": "later"})
        if reply["type"] == "ok":
            break
        assert_error(reply, "rate_limited")
        assert time.monotonic() < deadline, "no token after 3 s at 1 message/s"
        time.sleep(0.1)
    assert_ok_send(reply)


def _refused(server: ServerProcess) -> bool:
    """Whether a new connection is turned away before it gets ``hello``."""
    try:
        probe = ChatClient(HOST, server.port, server.ca_file, timeout=3)
    except (OSError, FrameTimeout, AssertionError):
        return True
    probe.close()
    return False


@pytest.mark.parametrize("key", ["max_connections_per_address", "max_connections"])
def test_connection_limits(server_factory: ServerFactory, key: str) -> None:
    limited = server_factory({"limits": {key: 3}})
    clients = [limited.connect() for _ in range(3)]
    assert all(c.hello is not None for c in clients)
    assert _refused(limited)
    # The others are unaffected, and a freed slot can be used again.
    assert clients[0].request({"type": "ping", "req": 1}) == {"type": "pong", "req": 1}
    clients[2].close()
    deadline = time.monotonic() + 5
    while _refused(limited):
        assert time.monotonic() < deadline, "the closed connection's slot never came free"
        time.sleep(0.05)


def test_idle_connections_are_pinged_then_dropped(server_factory: ServerFactory) -> None:
    idle_timeout = 5
    quick = server_factory({"limits": {"idle_timeout": idle_timeout}})
    silent_user, answering_user = quick.new_users(2)
    silent = quick.login(silent_user)
    answering = quick.login(answering_user)
    started = time.monotonic()

    assert silent.expect("ping", timeout=idle_timeout) == {"type": "ping"}
    assert answering.expect("ping", timeout=idle_timeout) == {"type": "ping"}
    answering.send({"type": "pong"})
    pinged_after = time.monotonic() - started
    assert idle_timeout / 2 - 0.5 <= pinged_after <= idle_timeout

    assert silent.expect_bye("idle_timeout", timeout=idle_timeout) == []
    assert time.monotonic() - started <= idle_timeout + 4  # checked once a second
    # The connection that answered is alive past the timeout.
    assert answering.request({"type": "ping", "req": 1}) == {"type": "pong", "req": 1}


def test_a_client_that_never_reads_does_not_slow_the_others(
    server_factory: ServerFactory,
) -> None:
    text = "z" * 30_000
    config = {"limits": {"max_queued_bytes": 65_536, "max_text_chars": len(text)}}
    busy = server_factory(config)
    sleeper_name, sender_name, reader_name = busy.new_users(3)
    room = "limits-slow"
    # A small receive buffer, so the server's queue for it fills sooner.
    sleeper = busy.connect(receive_buffer=4096)
    sleeper.login(sleeper_name, password_of(sleeper_name))
    join(sleeper, room)  # from here on the sleeper never reads again
    sender = busy.login(sender_name)
    reader = busy.login(reader_name)
    join(sender, room)
    join(reader, room)

    acked: dict[int, float] = {}
    received: dict[int, float] = {}
    sending_done = threading.Event()

    def read_everything() -> None:
        deadline = time.monotonic() + 60
        while not (sending_done.is_set() and acked.keys() <= received.keys()):
            assert time.monotonic() < deadline, "the reader is missing messages"
            try:
                frame = reader.next_frame(0.1)
            except FrameTimeout:
                continue  # nothing yet: look at the condition again
            if frame["type"] == "message":
                received[frame["id"]] = time.monotonic()

    def sleeper_online() -> bool:
        who = sender.request({"type": "who", "room": room})
        return bool({m["user"]: m["online"] for m in who["members"]}[sleeper_name])

    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read_everything)
        try:
            for n in range(1, 501):  # at most 15 MB towards the sleeper
                reply = sender.request({"type": "send", "room": room, "text": text})
                acked[assert_ok_send(reply)] = time.monotonic()
                sender.take_queued()  # its own copies
                if n % 20 == 0 and not sleeper_online():
                    break
            else:
                raise AssertionError("the client that never reads was never disconnected")
        finally:
            sending_done.set()
        reading.result(60)
    delays = sorted(received[i] - acked[i] for i in acked)
    assert delays[-1] < 2.0, f"worst delivery {delays[-1]:.3f}s after the ok"

    # What the sleeper finally reads ends with the server closing it (after a bye if any).
    frames = sleeper.wait_closed(timeout=10)
    byes = [f for f in frames if f["type"] == "bye"]
    assert byes in ([], [{"type": "bye", "reason": "slow_consumer"}]), byes
    # The others carry on.
    message_id = send_room(sender, room, "after the sleeper left")
    assert reader.expect("message", id=message_id)["text"] == "after the sleeper left"
