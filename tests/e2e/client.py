"""A small blocking chat client for the end-to-end tests: a TLS socket and the wire JSON.

It knows the contract, not the server: frames are kept as the JSON objects the server
sent, so tests read like ``../shared/protocol.md``. Framing uses the protocol package's
``LineFramer`` and every frame is also parsed by ``parse_server_frame`` (what
``ClientConnection`` does), so a malformed server frame fails the test that received it.

A client belongs to one thread. Frames that arrive while a test waits for something
else are kept, in order, for a later ``expect`` or ``next_frame``.
"""

from __future__ import annotations

import itertools
import json
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chatsecure.protocol import DEFAULT_MAX_SERVER_FRAME_BYTES, LineFramer, parse_server_frame

Frame = dict[str, Any]
DEFAULT_TIMEOUT = 5.0


class ConnectionClosed(AssertionError):
    """The server closed the connection while the test still waited for a frame."""


class FrameTimeout(AssertionError):
    """The awaited frame did not come in time."""


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """A client context that trusts only our CA and checks the server's name."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _matches(frame: Mapping[str, Any], kind: str | None, fields: Mapping[str, Any]) -> bool:
    if kind is not None and frame.get("type") != kind:
        return False
    return all(frame.get(key, _MISSING) == value for key, value in fields.items())


_MISSING = object()


class ChatClient:
    """One TLS connection to the server; ``hello`` is read on connect."""

    def __init__(
        self,
        host: str,
        port: int,
        ca_file: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        context: ssl.SSLContext | None = None,
        read_hello: bool = True,
        receive_buffer: int | None = None,
    ) -> None:
        self.timeout = timeout
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if receive_buffer is not None:  # before connect, so the TCP window starts small
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            raw.settimeout(timeout)
            raw.connect((host, port))
            self.sock = (context or tls_context(ca_file)).wrap_socket(
                raw, server_hostname="localhost"
            )
        except BaseException:
            raw.close()
            raise
        self._framer = LineFramer(DEFAULT_MAX_SERVER_FRAME_BYTES)
        self._inbox: list[Frame] = []
        self._req_ids = itertools.count(1)
        self.eof = False
        self.user: str | None = None
        self.hello: Frame | None = None
        if read_hello:
            self.hello = self.next_frame()

    # --- sending -------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, frame: Mapping[str, Any]) -> None:
        """Send one frame as compact UTF-8 JSON and a newline."""
        self.send_raw(json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")

    def new_req(self) -> int:
        return next(self._req_ids)

    def request(self, frame: Mapping[str, Any], timeout: float | None = None) -> Frame:
        """Send ``frame`` (given a ``req`` if it has none) and return the reply to it.

        The reply is the first frame carrying the same ``req``; others stay queued.
        """
        frame = dict(frame)
        frame.setdefault("req", f"r{self.new_req()}")
        self.send(frame)
        return self.expect(None, timeout, req=frame["req"])

    # --- receiving -----------------------------------------------------------------

    def _read_more(self, deadline: float) -> None:
        """Read at least one more frame into the inbox, or raise at EOF or the deadline."""
        while True:
            line = self._framer.next_line()
            if line is not None:
                parse_server_frame(line)  # raises if the server sent a malformed frame
                frame = json.loads(line)
                assert isinstance(frame, dict), line
                self._inbox.append(frame)
                return
            if self.eof:
                raise ConnectionClosed(f"connection closed; unread frames: {self._inbox}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FrameTimeout("no frame in time")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise FrameTimeout("no frame in time") from None
            except (ssl.SSLError, ConnectionError):
                data = b""
            if data:
                self._framer.feed(data)
            else:
                self.eof = True

    def expect(self, kind: str | None, timeout: float | None = None, **fields: Any) -> Frame:
        """The first frame (received or to come) of type ``kind`` with these fields.

        Frames before it that do not match stay queued for later calls.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        scanned = 0
        while True:
            for index in range(scanned, len(self._inbox)):
                if _matches(self._inbox[index], kind, fields):
                    return self._inbox.pop(index)
            scanned = len(self._inbox)
            try:
                self._read_more(deadline)
            except FrameTimeout:
                raise FrameTimeout(
                    f"no {kind or 'frame'} with {fields} within the timeout; queued: {self._inbox}"
                ) from None

    def next_frame(self, timeout: float | None = None) -> Frame:
        """The oldest frame not yet taken, whatever its type."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        if not self._inbox:
            self._read_more(deadline)
        return self._inbox.pop(0)

    def frames_until(
        self, kind: str, timeout: float | None = None, **fields: Any
    ) -> tuple[list[Frame], Frame]:
        """Every frame before the first ``kind`` with ``fields``, and that frame.

        Used as a barrier: whatever the server queued for us before it will be in the list.
        """
        before: list[Frame] = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self.next_frame(max(deadline - time.monotonic(), 0.0))
            if _matches(frame, kind, fields):
                return before, frame
            before.append(frame)

    def take_queued(self, predicate: Callable[[Frame], bool] | None = None) -> list[Frame]:
        """Remove and return the frames already received (those matching ``predicate``)."""
        taken: list[Frame] = []
        kept: list[Frame] = []
        for frame in self._inbox:
            (taken if predicate is None or predicate(frame) else kept).append(frame)
        self._inbox = kept
        return taken

    def sync(self, timeout: float | None = None) -> list[Frame]:
        """Ping and wait for the pong: afterwards every earlier reply has arrived.

        Returns the frames that came before the pong (they are taken off the queue).
        """
        req = f"sync{self.new_req()}"
        self.send({"type": "ping", "req": req})
        before, _ = self.frames_until("pong", timeout, req=req)
        return before

    def wait_closed(self, timeout: float | None = None) -> list[Frame]:
        """Read until the server closes the connection; returns the frames that came."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                self._read_more(deadline)
            except ConnectionClosed:
                frames, self._inbox = self._inbox, []
                return frames

    def expect_bye(self, reason: str, timeout: float | None = None) -> list[Frame]:
        """The server says ``bye`` ``reason`` and closes; returns the frames before it."""
        frames = self.wait_closed(timeout)
        byes = [f for f in frames if f.get("type") == "bye"]
        assert byes == [{"type": "bye", "reason": reason}], frames
        assert frames[-1]["type"] == "bye", f"frames after bye: {frames}"
        return frames[:-1]

    # --- conveniences --------------------------------------------------------------

    def login(self, username: str, password: str) -> Frame:
        """Log in and return ``welcome``; the frames that follow it stay queued."""
        reply = self.request({"type": "login", "username": username, "password": password})
        assert reply["type"] == "welcome", reply
        self.user = reply["user"]
        return reply

    def login_and_settle(self, username: str, password: str) -> Frame:
        """Log in and take every frame the login sends unasked (history, who)."""
        welcome = self.login(username, password)
        self.sync()
        return welcome

    def close(self) -> None:
        """Close our side (close_notify, then the socket), ignoring a peer already gone."""
        try:
            self.sock.settimeout(1.0)
            self.sock.unwrap().close()
        except (OSError, ValueError, ssl.SSLError):
            self.sock.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
