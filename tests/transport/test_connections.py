"""Real TLS on loopback against a fake core: delivery, order, slow consumers, timeouts."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import tracemalloc

import pytest

from chatsecure.server.transport import connection
from tests.transport.conftest import (
    SHUTDOWN_BYE,
    TIMEOUT,
    StartServer,
    connect,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


def test_echo(start_server: StartServer, ctx: ssl.SSLContext) -> None:
    server = start_server()
    client = connect(server.address, ctx)
    client.send_line(b'{"type":"ping","req":1}')
    assert client.read_line() == b'{"type":"ping","req":1}\n'
    session = server.core.wait_sessions(1)[0]
    assert session.address == "127.0.0.1"
    client.close()
    assert session.lost.wait(TIMEOUT)
    assert wait_until(lambda: server.listener.connection_count() == 0)
    assert session.lost_calls == 1


def test_echo_over_ipv6(start_server: StartServer, ctx: ssl.SSLContext) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = start_server(server={"host": "::1"})
    except OSError:
        pytest.skip("no IPv6 loopback")
    client = connect(server.address, ctx)
    client.send_line(b"hello")
    assert client.read_line() == b"hello\n"
    assert server.core.wait_sessions(1)[0].address == "::1"


def test_a_frame_split_across_many_tls_records(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    client = connect(server.address, ctx)
    line = b'{"type":"send","room":"general","text":"' + b"x" * 300 + b'"}'
    for byte in line + b"\n":  # one TLS record per byte
        client.sock.sendall(bytes([byte]))
    assert client.read_line() == line + b"\n"
    # And the other way: one frame far larger than a TLS record (16 KiB).
    big = b"y" * (3 * 1024 * 1024) + b"\n"
    server.core.wait_sessions(1)[0].outbox.send(big)
    assert client.read_line() == big


def test_concurrent_senders_keep_order_and_lose_nothing(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    client = connect(server.address, ctx)
    outbox = server.core.wait_sessions(1)[0].outbox
    threads, frames = 8, 3000
    start = threading.Barrier(threads)

    def blast(thread: int) -> None:
        start.wait()
        for seq in range(frames):
            outbox.send(b"%d %d\n" % (thread, seq))

    senders = [threading.Thread(target=blast, args=(t,)) for t in range(threads)]
    for sender in senders:
        sender.start()
    last = [-1] * threads
    for _ in range(threads * frames):
        thread, seq = map(int, client.read_line().split())
        assert seq == last[thread] + 1
        last[thread] = seq
    for sender in senders:
        sender.join(TIMEOUT)
    assert last == [frames - 1] * threads


def test_close_delivers_what_is_queued_then_closes(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server()
    client = connect(server.address, ctx)
    session = server.core.wait_sessions(1)[0]
    for i in range(1000):
        session.outbox.send(b"frame %d\n" % i)
    session.outbox.close()
    session.outbox.close()  # idempotent
    session.outbox.send(b"after close\n")  # dropped
    expected = b"".join(b"frame %d\n" % i for i in range(1000))
    assert client.read_until_eof() == expected
    assert session.lost.wait(TIMEOUT)
    assert session.lost_calls == 1


def test_slow_consumer_is_cut_off_and_others_keep_receiving(
    start_server: StartServer, ctx: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough that the late reader below can still take its `bye`.
    monkeypatch.setattr(connection, "SLOW_CONSUMER_GRACE", 3.0)
    server = start_server(limits={"max_queued_bytes": 65536})
    late = connect(server.address, ctx, rcvbuf=4096)  # stops reading, then reads late
    never = connect(server.address, ctx, rcvbuf=4096)  # never reads again
    fast = connect(server.address, ctx)
    sessions = server.core.wait_sessions(3)
    frame = b"z" * 4095 + b"\n"
    count, batch = 2000, 8  # 8 MiB each: far beyond the bound plus every kernel buffer
    taken = threading.Semaphore(0)

    def read_fast() -> None:
        for _ in range(count):
            assert fast.read_line() == frame
            taken.release()

    reader = threading.Thread(target=read_fast)
    reader.start()
    send_time = 0.0
    began = time.monotonic()
    for _ in range(count // batch):
        # Paced by the fast reader (a burst of 32 KiB at a time, under the 64 KiB
        # bound), so only the clients that do not read fall behind.
        before = time.monotonic()
        for _ in range(batch):
            for session in sessions:
                session.outbox.send(frame)
        send_time += time.monotonic() - before
        for _ in range(batch):
            assert taken.acquire(timeout=TIMEOUT), "the reading client stalled"
    reader.join(TIMEOUT)
    assert time.monotonic() - began < 20.0
    assert send_time < 5.0, "send() blocked on a client that does not read"

    tail = late.read_until_eof()
    assert tail.endswith(b'{"type":"bye","reason":"slow_consumer"}\n')
    assert sessions[0].lost.wait(TIMEOUT)
    # The one that never reads is cut when its grace runs out, bye or not.
    assert sessions[1].lost.wait(connection.SLOW_CONSUMER_GRACE + TIMEOUT)
    assert not sessions[2].lost.is_set()
    fast.send_line(b"still here")
    assert fast.read_line() == b"still here\n"
    never.close()


def test_silent_client_times_out_without_blocking_others(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server(tls={"handshake_timeout": 1.0})
    silent = socket.create_connection(server.address, timeout=TIMEOUT)
    began = time.monotonic()
    client = connect(server.address, ctx)  # handshakes while the silent one waits
    client.send_line(b"hi")
    assert client.read_line() == b"hi\n"
    assert time.monotonic() - began < 1.0
    assert silent.recv(1) == b""  # closed by the server ...
    assert 0.9 < time.monotonic() - began < 5.0  # ... after the handshake timeout
    silent.close()
    assert wait_until(lambda: server.listener.connection_count() == 1)


@pytest.mark.parametrize(
    "limits",
    [
        {"max_connections": 2, "max_connections_per_address": 50},
        {"max_connections": 50, "max_connections_per_address": 2},
    ],
    ids=["total", "per-address"],
)
def test_connection_limits(
    start_server: StartServer, ctx: ssl.SSLContext, limits: dict[str, int]
) -> None:
    server = start_server(limits=limits)
    first, second = connect(server.address, ctx), connect(server.address, ctx)
    with pytest.raises((ssl.SSLError, OSError, EOFError)):
        connect(server.address, ctx)  # refused: closed before the handshake
    first.close()
    assert wait_until(lambda: server.listener.connection_count() == 1)
    third = connect(server.address, ctx)  # a freed place can be taken again
    third.close()
    second.close()


def test_graceful_stop_flushes_queued_data(start_server: StartServer, ctx: ssl.SSLContext) -> None:
    server = start_server()
    client = connect(server.address, ctx)
    session = server.core.wait_sessions(1)[0]
    payload = b"".join(b"queued %d\n" % i for i in range(100_000))  # ~1.3 MiB
    session.outbox.send(payload)
    began = time.monotonic()
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(client.read_until_eof()))
    reader.start()
    server.stop()
    assert time.monotonic() - began < 5.0
    reader.join(TIMEOUT)
    assert result == [payload + SHUTDOWN_BYE]
    assert server.core.shutdown_called.is_set()
    assert session.lost.is_set()


def test_stop_cuts_clients_that_do_not_close(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server(limits={"max_queued_bytes": 65536})
    stuck = connect(server.address, ctx, rcvbuf=4096)
    silent = socket.create_connection(server.address, timeout=TIMEOUT)  # mid-handshake
    session = server.core.wait_sessions(1)[0]
    for _ in range(10):
        session.outbox.send(b"w" * 4000 + b"\n")
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < 6.0
    assert server.listener.connection_count() == 0
    stuck.close()
    silent.close()


def test_nothing_listens_after_stop(start_server: StartServer, ctx: ssl.SSLContext) -> None:
    server = start_server()
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        connect(server.address, ctx)


def test_a_port_in_use_fails_start_cleanly(start_server: StartServer) -> None:
    first = start_server()
    with pytest.raises(OSError, match="in use"):
        start_server(server={"port": first.address[1]})
    first.stop()


def test_a_request_sent_with_the_last_handshake_flight_is_read(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    """TLS 1.3 lets a client send data right behind its Finished, in one segment.

    The server's handshake reads both; the request must not wait for more input.
    """
    server = start_server()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with socket.create_connection(server.address[:2], timeout=TIMEOUT) as raw:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                incoming.write(raw.recv(65536))
        tls.write(b'{"type":"ping","req":1}\n')
        raw.sendall(outgoing.read())  # Finished and the request together
        received = b""
        deadline = time.monotonic() + TIMEOUT
        while b'"req":1' not in received and time.monotonic() < deadline:
            incoming.write(raw.recv(65536))
            with contextlib.suppress(ssl.SSLWantReadError):
                while True:
                    received += tls.read(65536)
        assert b'{"type":"ping","req":1}\n' in received


def test_an_idle_reader_holds_no_receive_buffer(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    """A ``recv`` allocates its buffer before it waits; with 10,000 idle clients that
    is 160 MiB, so the reader waits in ``poll`` and only then reads."""
    server = start_server()
    tracemalloc.start()
    try:
        clients = [connect(server.address, ctx) for _ in range(10)]
        for client in clients:  # each reader has read once, and waits again
            client.send_line(b"hi")
            assert client.read_line() == b"hi\n"
        time.sleep(0.2)
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    traces = snapshot.filter_traces([tracemalloc.Filter(True, connection.__file__)])
    held = sum(stat.size for stat in traces.statistics("filename"))
    assert held < len(clients) * connection.RECV_BYTES // 4  # ~6 KB here; 168 KB if waiting in recv
