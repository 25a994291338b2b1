"""The one reader thread (``transport.reader``): real TLS on loopback.

It reads every connection, and a session sets aside what may wait for the connection's
own thread: that client is not read meanwhile, so its requests stay in order, and no
other client waits for it. One session's fault ends only its own connection.
"""

from __future__ import annotations

import ssl
import time

import pytest

from tests.transport.conftest import (
    TIMEOUT,
    Client,
    FakeSession,
    Server,
    StartServer,
    connect,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


def slow_client(server: Server, ctx: ssl.SSLContext) -> tuple[Client, FakeSession]:
    """A client whose session is in set-aside work that waits for the core's gate."""
    count = len(server.core.wait_sessions(0))
    client = connect(server.address, ctx)
    session = server.core.wait_sessions(count + 1)[count]
    client.send_line(b"SLOW")
    assert session.slow_started.wait(TIMEOUT)
    return client, session


def test_a_slow_request_holds_up_only_its_own_client(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    slow, _ = slow_client(server, ctx)
    other = connect(server.address, ctx)

    for i in range(50):
        other.send_line(b"hi %d" % i)
        assert other.read_line() == b"hi %d\n" % i

    server.core.gate.set()
    assert slow.read_line() == b"SLOW\n"


def test_a_client_is_not_read_until_its_set_aside_work_has_run(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    client, session = slow_client(server, ctx)
    client.send_line(b"after")
    time.sleep(0.3)
    assert bytes(session.received) == b"SLOW\n"  # "after" waits in the kernel

    server.core.gate.set()
    assert [client.read_line() for _ in range(2)] == [b"SLOW\n", b"after\n"]
    assert bytes(session.received) == b"SLOW\nafter\n"


def test_lines_behind_a_slow_one_in_the_same_read_keep_their_order(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    server.core.gate.set()
    client = connect(server.address, ctx)
    client.sock.sendall(b"one\nSLOW\ntwo\nLOGIN\nthree\n")
    expected = [b"one\n", b"SLOW\n", b"two\n", b"LOGIN\n", b"three\n"]
    assert [client.read_line() for _ in expected] == expected


def test_a_client_that_hangs_up_during_set_aside_work_is_cleaned_up(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    client, session = slow_client(server, ctx)
    client.close()
    time.sleep(0.1)
    assert not session.lost.is_set()  # its own thread is still in the work

    server.core.gate.set()
    assert session.lost.wait(TIMEOUT)
    assert session.lost_calls == 1
    assert wait_until(lambda: server.listener.connection_count() == 0)


def test_a_fault_on_the_reader_thread_closes_only_that_connection(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    faulty, other = connect(server.address, ctx), connect(server.address, ctx)
    faulty_session, _ = server.core.wait_sessions(2)
    faulty.send_line(b"CRASH")
    assert faulty.read_until_eof() == b""
    assert faulty_session.lost.wait(TIMEOUT)

    other.send_line(b"still here")
    assert other.read_line() == b"still here\n"
    late = connect(server.address, ctx)
    late.send_line(b"new")
    assert late.read_line() == b"new\n"
