"""Admission of connections that have not logged in: their own budget, shorter deadlines."""

from __future__ import annotations

import socket
import ssl

import pytest

from chatsecure.server.transport.listener import (
    MIN_HANDSHAKE_TIMEOUT,
    address_block,
    handshake_timeout,
)
from tests.transport.conftest import StartServer, connect, wait_until


def test_ipv6_addresses_count_per_64_and_ipv4_per_address() -> None:
    assert address_block("2001:db8:1:2:aaaa::1") == address_block("2001:db8:1:2:bbbb::9")
    assert address_block("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_block("2001:db8:1:3::1") != address_block("2001:db8:1:2::1")
    assert address_block("192.0.2.7") == "192.0.2.7"


@pytest.mark.parametrize(
    ("in_use", "expected"),
    [(0, 10.0), (50, 10.0), (75, 5.0), (90, 2.0), (99, 1.0), (100, 1.0)],
)
def test_the_handshake_deadline_shrinks_as_the_budget_fills(in_use: int, expected: float) -> None:
    assert handshake_timeout(10.0, in_use, 100) == pytest.approx(expected)


def test_the_handshake_deadline_never_drops_below_its_floor() -> None:
    assert handshake_timeout(4.0, 99, 100) == MIN_HANDSHAKE_TIMEOUT
    assert handshake_timeout(0.5, 99, 100) == 0.5  # configured below the floor: kept


def test_connections_before_login_have_their_own_budget(
    start_server: StartServer, ctx: ssl.SSLContext
) -> None:
    server = start_server(
        limits={
            "max_connections": 50,
            "max_unauthenticated": 3,
            "max_unauthenticated_per_address": 2,
        }
    )
    first, second = connect(server.address, ctx), connect(server.address, ctx)
    with pytest.raises((ssl.SSLError, OSError, EOFError)):
        connect(server.address, ctx)  # two from this address have not logged in
    first.send_line(b"LOGIN")
    assert first.read_line() == b"LOGIN\n"
    assert wait_until(lambda: server.listener.unauthenticated_count() == 1)
    third = connect(server.address, ctx)  # the logged-in one no longer counts
    other = socket.create_connection(server.address, source_address=("127.0.0.2", 0))
    assert wait_until(lambda: server.listener.unauthenticated_count() == 3)
    third_address = socket.socket()
    third_address.bind(("127.0.0.3", 0))
    with pytest.raises((ssl.SSLError, OSError, EOFError)):
        connect(server.address, ctx, raw=third_address)  # 3 in all: the total is full
    for client in (first, second, third):
        client.close()
    other.close()
    assert wait_until(lambda: server.listener.connection_count() == 0)
    assert server.listener.unauthenticated_count() == 0
