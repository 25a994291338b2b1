"""One fd per connection, closed once and only when both threads are done with it.

Client and server share this process, so ``/proc/self/fd`` counts both sides, and a
client socket made at the wrong moment would take a freed number before the server's
``accept`` could: the tests make their client sockets early for that reason.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

import pytest

from chatsecure.server.transport import connection
from chatsecure.server.transport.connection import Connection, Phase
from tests.transport.conftest import TIMEOUT, FakeSession, StartServer, connect, wait_until

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd"),
]

CLIENTS = 20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def connection_of(session: FakeSession) -> Connection:
    assert isinstance(session.outbox, Connection)
    return session.outbox


def test_each_connection_holds_one_fd_and_gives_it_back(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    before = open_fds()
    clients = [connect(server.address, ctx) for _ in range(CLIENTS)]
    sessions = server.core.wait_sessions(CLIENTS)
    # One fd for each client socket, and one for each server connection.
    assert open_fds() - before == 2 * CLIENTS
    # The writer's os.write relies on the reader's timeout keeping the fd non-blocking.
    assert not any(os.get_blocking(connection_of(s).fd) for s in sessions)

    # Not TLS: the handshake fails, and the reader (the writer never saw it) closes it.
    with socket.create_connection(server.address, timeout=TIMEOUT) as garbage:
        garbage.sendall(b"GET / HTTP/1.0\r\n\r\n")
        while garbage.recv(4096):
            pass
    for client in clients:
        client.close()
    assert wait_until(lambda: open_fds() == before)


def test_a_closing_connection_keeps_its_fd_until_the_writer_is_done(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    """The fd outlives the reader while ciphertext still waits to be written.

    Were it closed when the reader exits, the next ``accept`` would get its number and
    the writer would send the old client's ciphertext to the new client (whose TLS would
    then fail). Once the old connection is done, its number may be reused, and late calls
    on its outbox must not touch the client that has it now.
    """
    server = start_server(limits={"max_queued_bytes": 16 * 1024 * 1024})
    old = connect(server.address, ctx, rcvbuf=4096)
    old_session = server.core.wait_sessions(1)[0]
    old_conn = connection_of(old_session)
    old_fd = old_conn.fd
    for _ in range(1024):  # 4 MiB for a client that never reads
        old_session.outbox.send(b"o" * 4095 + b"\n")
    assert wait_until(lambda: old_conn.holds_data)
    raw_next, raw_last = socket.socket(), socket.socket()

    old.sock.shutdown(socket.SHUT_WR)  # the server's reader sees EOF and exits
    assert old_session.lost.wait(TIMEOUT)
    assert old_conn.holds_data  # the writer still holds data for the old client
    new = connect(server.address, ctx, raw=raw_next)
    assert connection_of(server.core.wait_sessions(2)[1]).fd != old_fd
    # The old connection's close grace runs out while the new one is in use.
    deadline = time.monotonic() + connection.CLOSE_GRACE + 1.0
    while time.monotonic() < deadline:
        new.send_line(b"new")
        assert new.read_line() == b"new\n"
        time.sleep(0.05)
    assert wait_until(lambda: old_conn.phase is Phase.DONE)

    last = connect(server.address, ctx, raw=raw_last)
    assert connection_of(server.core.wait_sessions(3)[2]).fd == old_fd  # the number is reused
    old_conn.send(b"late\n")
    old_conn.close()
    old_conn.abort()
    for client in (last, new):
        client.send_line(b"still mine")
        assert client.read_line() == b"still mine\n"
    old.close()
