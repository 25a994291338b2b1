"""The security suite attacks the real server: the e2e harness, plus clients from other addresses.

Servers come from the end-to-end fixtures (``server_factory``, ``server``: a real
``chatsecure-server`` subprocess set up with ``chatsecure-admin``), imported here so
pytest sees them in this folder too. ``client_from`` adds what the e2e client lacks: a
connection whose source address is another loopback address (127.0.0.2, ...), so
per-address limits can be attacked from many "machines" without leaving loopback.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable
from pathlib import Path

from chatsecure.protocol import DEFAULT_MAX_SERVER_FRAME_BYTES, LineFramer
from tests.e2e.client import DEFAULT_TIMEOUT, ChatClient, tls_context
from tests.e2e.conftest import ServerProcess, module_server, server, server_factory, tls_files
from tests.serverproc import HOST

__all__ = [
    "client_from",
    "module_server",
    "server",
    "server_factory",
    "tls_files",
    "wait_until",
]


class BoundClient(ChatClient):
    """A ``ChatClient`` whose socket is bound to ``source`` (a 127.x.y.z address) first."""

    def __init__(
        self, source: str, port: int, ca_file: Path, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        raw = socket.create_connection((HOST, port), timeout, source_address=(source, 0))
        try:
            self.sock = tls_context(ca_file).wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self.timeout = timeout
        self._framer = LineFramer(DEFAULT_MAX_SERVER_FRAME_BYTES)
        self._inbox = []
        self._req_ids = itertools.count(1)
        self.eof = False
        self.user = None
        self.hello = self.next_frame()


def client_from(server: ServerProcess, source: str, timeout: float = DEFAULT_TIMEOUT) -> ChatClient:
    """A client of ``server`` connecting from ``source``; closed when the test ends."""
    client = BoundClient(source, server.port, server.ca_file, timeout=timeout)
    server.clients.append(client)
    return client


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(interval)
