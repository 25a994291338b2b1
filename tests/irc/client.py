"""A small blocking IRC client for the tests: a TLS socket and our IRC codec.

It reads what the server sends in order; ``until`` returns everything up to a line a
test waits for, so a test can check what came before it. Lines are parsed by
``chatsecure.server.irc.codec``, so a line the codec would refuse fails the test.
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
from pathlib import Path

from chatsecure.server.irc.codec import LineProblem, LineReader, Message, parse
from tests.e2e.client import tls_context
from tests.e2e.conftest import ServerProcess
from tests.serverproc import HOST

TIMEOUT = 5.0


class IrcClosed(AssertionError):
    """The server closed the connection while the test still waited for a line."""


class RawIrcClient:
    def __init__(
        self,
        port: int,
        ca_file: Path,
        timeout: float = TIMEOUT,
        receive_buffer: int | None = None,
    ) -> None:
        self.timeout = timeout
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if receive_buffer is not None:  # before connect, so the TCP window starts small
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            raw.settimeout(timeout)
            raw.connect((HOST, port))
            self.sock = tls_context(ca_file).wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self._reader = LineReader(1 << 20)
        self.eof = False
        self.seen: list[Message] = []

    def close(self) -> None:
        self.sock.close()

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def next_line(self, deadline: float) -> Message:
        while True:
            line = self._reader.next_line()
            if line is not None:
                assert not isinstance(line, LineProblem), line
                message = parse(line)
                self.seen.append(message)
                return message
            if self.eof:
                raise IrcClosed(f"connection closed; seen: {self.seen[-20:]}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line in time; seen: {self.seen[-20:]}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except (ssl.SSLError, ConnectionError):
                data = b""
            if data:
                self._reader.receive_data(data)
            else:
                self.eof = True

    def until(self, command: str, *params: str) -> list[Message]:
        """Every line up to and including the next ``command`` whose params start so."""
        deadline = time.monotonic() + self.timeout
        taken = []
        while True:
            message = self.next_line(deadline)
            taken.append(message)
            if message.command == command and message.params[: len(params)] == params:
                return taken

    def expect(self, command: str, *params: str) -> Message:
        return self.until(command, *params)[-1]

    def sasl(self, user: str, password: str, caps: str) -> list[Message]:
        """Register with CAP and SASL PLAIN; everything up to the end of the MOTD."""
        self.send("CAP LS 302")
        self.send(f"NICK {user}")
        self.send(f"USER {user} 0 * :{user}")
        self.expect("CAP", "*", "LS")
        self.send(f"CAP REQ :{caps}")
        self.expect("CAP", user, "ACK")
        self.send("AUTHENTICATE PLAIN")
        self.expect("AUTHENTICATE", "+")
        self.send("AUTHENTICATE " + base64.b64encode(f"\0{user}\0{password}".encode()).decode())
        self.expect("903")
        self.send("CAP END")
        return self.until("376")


class IrcClients:
    """Raw IRC clients of a server's IRC port, closed together when a test ends."""

    def __init__(self, server: ServerProcess) -> None:
        self._port = int(server.settings["irc"]["port"])
        self._ca_file = server.ca_file
        self._clients: list[RawIrcClient] = []

    def connect(self, receive_buffer: int | None = None) -> RawIrcClient:
        client = RawIrcClient(self._port, self._ca_file, receive_buffer=receive_buffer)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()
