"""Many TLS client connections in one process: one selector, ``SSLObject`` over ``MemoryBIO``.

A thread per connection would make the generator, not the server, the thing measured:
at 1,000 receivers one process must decrypt a thousand records per message. Here a
connection is a socket, an ``SSLObject`` and two buffers; each readable socket is drained
and decrypted in a few C calls, and its complete lines go, as one block, to the
connection's ``on_block`` handler: by default split and passed line by line to
``on_line``, where a fan-out receiver instead counts the block's messages with C calls,
never a Python call per message. The wire protocol (chatsecure JSON or IRC) lives in
those callbacks.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from functools import partial

RECV_BYTES = 262_144
READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


FD_LIMIT = 65_536
RETRIES = 3  # new handshakes tried per client whose first one failed


def raise_fd_limit() -> int:
    """Lift the open-files limit for 10,000 sockets: to 65,536 if allowed (root), else hard."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, max(hard, FD_LIMIT)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def client_context() -> ssl.SSLContext:
    """TLS for the generator: loopback only, so the self-signed peers are not verified."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Conn:
    """One client connection; ``state`` and ``user`` belong to whoever drives it."""

    __slots__ = (
        "closed",
        "inc",
        "index",
        "on_block",
        "on_line",
        "out",
        "rbuf",
        "ready",
        "seen",
        "shaken",
        "sock",
        "state",
        "tls",
        "user",
        "wbuf",
    )

    def __init__(
        self,
        sock: socket.socket,
        tls: ssl.SSLObject,
        inc: ssl.MemoryBIO,
        out: ssl.MemoryBIO,
        index: int,
    ) -> None:
        self.sock = sock
        self.tls = tls
        self.inc = inc
        self.out = out
        self.index = index
        self.rbuf = b""
        self.wbuf = bytearray()
        self.shaken = False
        self.closed = False
        self.ready = False
        self.state = 0
        self.seen = 0  # a receiver's highest sequence number so far
        self.user = ""
        self.on_line: Callable[[Conn, bytes, float], None] = _ignore
        self.on_block: Callable[[Conn, bytes, float], None] = by_line


def _ignore(_conn: Conn, _line: bytes, _now: float) -> None:
    """The default line handler."""


def by_line(conn: Conn, block: bytes, now: float) -> None:
    """The default block handler: each of the block's lines to ``conn.on_line``."""
    on_line = conn.on_line
    for line in block.split(b"\n"):
        on_line(conn, line, now)


def _settled(batch: list[Conn]) -> bool:
    return all(c.shaken or c.closed for c in batch)


class Swarm:
    """A set of TLS connections multiplexed on one selector."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.context = client_context()
        self.conns: list[Conn] = []
        self.on_connected: Callable[[Conn], None] = lambda _conn: None
        self.lost = 0
        # One receive buffer for every socket: a fresh bytes per recv this size would be
        # an mmap and munmap each time (past malloc's threshold), most of a reader's cost.
        self._buffer = bytearray(RECV_BYTES)
        self._view = memoryview(self._buffer)

    # -- opening ------------------------------------------------------------------

    def open(
        self,
        host: str,
        port: int,
        count: int,
        *,
        sources: list[str] | None = None,
        wave: int = 200,
        timeout: float = 120.0,
    ) -> list[Conn]:
        """Connect ``count`` clients in waves (a SYN flood would overflow the backlog).

        A handshake that fails is tried again, up to ``RETRIES`` times per client: under a
        burst ngircd now and then drops one (5 of 200 in one full run), which would
        otherwise lose the whole scenario.
        """
        new: list[Conn] = []
        deadline = time.monotonic() + timeout
        while len(new) < count:
            batch = [
                self._connect(host, port, len(self.conns) + i, sources)
                for i in range(min(wave, count - len(new)))
            ]
            for attempt in range(RETRIES + 1):
                self.run_until(partial(_settled, batch), deadline)
                if attempt == RETRIES or not any(c.closed for c in batch):
                    break
                batch = [
                    self._connect(host, port, c.index, sources) if c.closed else c for c in batch
                ]
            self.conns.extend(batch)
            new.extend(batch)
        failed = sum(c.closed for c in new)
        if failed:
            raise ConnectionError(f"{failed} of {count} TLS connections failed")
        return new

    def _connect(self, host: str, port: int, index: int, sources: list[str] | None) -> Conn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if sources:
            sock.bind((sources[index % len(sources)], 0))
        sock.setblocking(False)
        err = sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(err, f"connect to {host}:{port} failed")
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        conn = Conn(sock, self.context.wrap_bio(inc, out), inc, out, index)
        self.selector.register(sock, READ | WRITE, conn)
        return conn

    def _handshake(self, conn: Conn) -> None:
        try:
            conn.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush(conn)
            return
        except (ssl.SSLError, OSError):
            self.close(conn)
            return
        conn.shaken = True
        self._flush(conn)
        self.on_connected(conn)

    # -- sending ------------------------------------------------------------------

    def send(self, conn: Conn, data: bytes) -> None:
        if conn.closed:
            return
        conn.tls.write(data)
        self._flush(conn)

    def _flush(self, conn: Conn) -> None:
        if conn.out.pending:
            conn.wbuf += conn.out.read()
        if not conn.wbuf or conn.closed:
            return
        try:
            sent = conn.sock.send(conn.wbuf)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close(conn)
            return
        del conn.wbuf[:sent]
        if conn.wbuf:
            self.selector.modify(conn.sock, READ | WRITE, conn)

    # -- receiving ----------------------------------------------------------------

    def poll(self, timeout: float | None) -> float | None:
        """Wait up to ``timeout`` for sockets, then read, decrypt and dispatch lines.

        Returns when the sockets were found ready (what the lines were stamped with), or
        None if none was.
        """
        events = self.selector.select(timeout)
        if not events:
            return None
        now = time.monotonic()
        for key, mask in events:
            conn: Conn = key.data
            if conn.closed:
                continue
            if mask & WRITE:
                if conn.wbuf:
                    self._flush(conn)
                if not conn.wbuf and not conn.closed:
                    self.selector.modify(conn.sock, READ, conn)
                if not conn.shaken:
                    self._handshake(conn)
            if mask & READ:
                self._read(conn, now)
        return now

    def _read(self, conn: Conn, now: float) -> None:
        try:
            size = conn.sock.recv_into(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        if not size:
            self.close(conn)
            return
        conn.inc.write(self._view[:size])
        if not conn.shaken:
            self._handshake(conn)
            if not conn.shaken:
                return
        chunks = []
        while True:
            try:
                chunk = conn.tls.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLError, OSError):
                self.close(conn)
                break
            if not chunk:
                self.close(conn)
                break
            chunks.append(chunk)
            # One record per read: with the BIO empty the next read could only fail,
            # and the exception would cost more than the record did.
            if not conn.inc.pending:
                break
        if conn.out.pending:
            self._flush(conn)
        if not chunks:
            return
        data = conn.rbuf + b"".join(chunks)
        end = data.rfind(b"\n")
        if end < 0:
            conn.rbuf = data
            return
        conn.rbuf = data[end + 1 :]
        conn.on_block(conn, data[:end], now)

    def run_until(self, done: Callable[[], bool], deadline: float, tick: float = 0.05) -> bool:
        """Poll until ``done()`` or the deadline; returns ``done()``."""
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return done()
            self.poll(min(tick, left))
        return True

    def close(self, conn: Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.lost += 1
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)
        conn.sock.close()

    def close_all(self) -> None:
        for conn in self.conns:
            self.close(conn)
        self.conns.clear()
