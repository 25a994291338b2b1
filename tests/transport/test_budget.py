"""The server-wide queue budget and the drain deadline (review round two, finding 2).

A connection's own bound (``max_queued_bytes``) is not enough: many connections that
never read could each fill theirs. Past the shared budget, a connection holding more
than ``FAIR_SHARE`` is dropped when more is queued for it; a reader that keeps up holds
little and is never touched. And a queue that has not emptied for ``drain_timeout`` is
dropped even when it stays under every bound: a client that reads a little now and then
is as stuck as one that never reads.
"""

from __future__ import annotations

import ssl
import threading
import time

import pytest

from tests.transport.conftest import TIMEOUT, StartServer, connect, wait_until

pytestmark = pytest.mark.timeout(60)

FRAME = b"q" * 4095 + b"\n"


def test_past_the_budget_big_queues_are_dropped_and_readers_go_on(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    budget = 1024 * 1024
    server = start_server(limits={"max_queued_bytes": 8 * budget, "max_queued_bytes_total": budget})
    stuck = [connect(server.address, ctx, rcvbuf=4096) for _ in range(3)]
    fast = connect(server.address, ctx)
    sessions = server.core.wait_sessions(4)
    *stuck_sessions, fast_session = sessions
    # Far more than the kernel takes for a 4 KiB window, 6 MiB each: the budget is
    # spent by the first of them, and each of the rest is dropped once it holds more
    # than its fair share.
    for _ in range(1536):
        for session in stuck_sessions:
            session.outbox.send(FRAME)
    for session in stuck_sessions:
        assert session.lost.wait(TIMEOUT + 5)
    assert wait_until(lambda: server.listener.budget.total == 0)  # all given back

    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.extend(fast.read_line() for _ in range(64)))
    reader.start()
    for _ in range(64):
        fast_session.outbox.send(FRAME)
    reader.join(TIMEOUT)
    assert received == [FRAME] * 64
    assert not fast_session.lost.is_set()
    for client in stuck:
        client.close()


def test_a_queue_that_never_empties_is_dropped_after_drain_timeout(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    drain_timeout = 1.0
    server = start_server(limits={"drain_timeout": drain_timeout})
    trickle = connect(server.address, ctx, rcvbuf=4096)
    session = server.core.wait_sessions(1)[0]
    done = threading.Event()

    def read_a_little() -> None:
        # A few KiB a second: always reading, never catching up.
        try:
            while not done.is_set() and trickle.sock.recv(2048):
                time.sleep(0.05)
        except OSError:
            pass

    reader = threading.Thread(target=read_a_little)
    reader.start()
    began = time.monotonic()
    while not session.lost.is_set() and time.monotonic() - began < drain_timeout + TIMEOUT:
        for _ in range(16):  # 64 KiB, under every byte bound: only the deadline can act
            session.outbox.send(FRAME)
        time.sleep(0.05)
    done.set()
    reader.join(TIMEOUT)
    assert session.lost.is_set(), "a client that never caught up was never dropped"
    assert time.monotonic() - began >= drain_timeout


def test_a_reader_that_catches_up_is_never_dropped(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server(limits={"drain_timeout": 1.0})
    client = connect(server.address, ctx)
    session = server.core.wait_sessions(1)[0]
    for _ in range(30):  # 3 s of bursts it reads at once: each leaves its queue empty
        for _ in range(64):
            session.outbox.send(FRAME)
        for _ in range(64):
            assert client.read_line() == FRAME
        time.sleep(0.1)
    assert not session.lost.is_set()
