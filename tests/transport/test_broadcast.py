"""A broadcast through the writer (``Writer.broadcaster``): real TLS on loopback.

It queues on every connection at once and wakes the writer once; each client must still
get it exactly once, in order with what was sent to it alone, never after a goodbye,
and a client that does not read is still cut off at its bound.
"""

from __future__ import annotations

import ssl

import pytest

from chatsecure.server.link import broadcast_to
from tests.transport.conftest import TIMEOUT, StartServer, connect, wait_until

pytestmark = pytest.mark.timeout(60)


def test_everyone_but_the_left_out_hears_it_once_in_order_with_own_sends(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    clients = [connect(server.address, ctx) for _ in range(3)]
    sessions = server.core.wait_sessions(3)
    links = [s.outbox for s in sessions]
    broadcast = broadcast_to(links)
    assert {link.carrier for link in links} == {links[0].carrier}  # one writer carries all

    for i in range(200):
        links[0].send(b"own %d\n" % i)
        broadcast(b"all %d\n" % i, [links[1]])
    links[1].send(b"own\n")

    assert [clients[0].read_line() for _ in range(400)] == [
        line for i in range(200) for line in (b"own %d\n" % i, b"all %d\n" % i)
    ]
    assert clients[1].read_line() == b"own\n"  # nothing of the broadcast came before
    assert [clients[2].read_line() for _ in range(200)] == [b"all %d\n" % i for i in range(200)]


def test_nothing_follows_a_goodbye_and_a_closed_queue_holds_nothing(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    leaving = connect(server.address, ctx)
    staying = connect(server.address, ctx)
    sessions = server.core.wait_sessions(2)
    links = [s.outbox for s in sessions]
    broadcast = broadcast_to(links)

    broadcast(b"before\n", ())
    links[0].send(b"bye\n")
    links[0].close()
    for _ in range(100):
        broadcast(b"after\n", ())
    assert leaving.read_until_eof() == b"before\nbye\n"
    assert sessions[0].lost.wait(TIMEOUT)
    assert [staying.read_line() for _ in range(101)] == [b"before\n"] + [b"after\n"] * 100

    # Broadcasts still reach the finished connection until its session leaves the
    # audience; the writer drops them at its next look.
    for _ in range(100):
        broadcast(b"x" * 1000 + b"\n", ())
    assert wait_until(lambda: links[0].unsent_bytes() == 0)
    assert [staying.read_line() for _ in range(100)] == [b"x" * 1000 + b"\n"] * 100


def test_a_client_that_does_not_read_broadcasts_is_cut_off(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server(limits={"max_queued_bytes": 65536})
    stuck = connect(server.address, ctx, rcvbuf=4096)
    reading = connect(server.address, ctx)
    sessions = server.core.wait_sessions(2)
    broadcast = broadcast_to([s.outbox for s in sessions])
    frame = b"z" * 4095 + b"\n"
    for _ in range(1000):  # 4 MiB: far beyond the bound plus every kernel buffer
        broadcast(frame, ())
        assert reading.read_line() == frame
    assert sessions[0].lost.wait(TIMEOUT + 3.0)  # the farewell's grace, then cut
    assert not sessions[1].lost.is_set()
    stuck.close()
