"""The listening sockets, the accept thread, connection limits and graceful shutdown.

The accept thread only accepts, counts and starts a thread for the connection: the TLS
handshake happens in that thread, so one slow or silent client never holds up the next.
Then one reader thread reads all the connections and one writer thread writes them.
Each connection is handed to the listener's ``Acceptor``, a wire format; the listener
knows no chat. Stopping is two steps, so a host with several listeners can say goodbye through
the chat service in between: ``stop_accepting``, then ``close``.

Connections that have not logged in cost an attacker nothing but a socket, so they have
a budget of their own, in total and per address (an IPv6 /64 counting as one address),
well inside ``max_connections``: a flood of them cannot take the slots of logged-in
users, nor, from a few addresses, those of new logins. As that budget fills, new
connections get less time for their handshake.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import selectors
import socket
import ssl
import threading
import time
from collections import Counter

from chatsecure.config import Settings
from chatsecure.server.link import Acceptor, SessionPort
from chatsecure.server.transport.addresses import peer_ip
from chatsecure.server.transport.budget import QueueBudget
from chatsecure.server.transport.connection import Connection
from chatsecure.server.transport.reader import Reader
from chatsecure.server.transport.writer import Writer

log = logging.getLogger(__name__)

BACKLOG = 1024
# Total time close() gives goodbyes and queued data to reach clients.
SHUTDOWN_GRACE = 3.0
# Refused connections are logged at most this often (a flood must not flood the log).
REFUSAL_LOG_INTERVAL = 5.0
# After a failed accept (e.g. out of file descriptors), pause instead of spinning.
ACCEPT_ERROR_PAUSE = 0.1
# The shortest handshake deadline a full unauthenticated budget brings it down to.
MIN_HANDSHAKE_TIMEOUT = 1.0


def address_block(address: str) -> str:
    """What per-address budgets of unauthenticated connections count: IPv6 per /64.

    One IPv6 subscriber usually holds a whole /64, so counting its single addresses
    would give one machine 2^64 budgets.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip.packed, 64), strict=False))
    return address


def handshake_timeout(configured: float, unauthenticated: int, budget: int) -> float:
    """The handshake deadline of a new connection, by how much of the budget is in use.

    The configured one while at most half is used; then less in step with what is left,
    down to a tenth (never below ``MIN_HANDSHAKE_TIMEOUT``, unless configured lower), so
    that connections holding on without a handshake make room sooner under a flood.
    """
    share = min(1.0, max(0.1, 2 * (1 - unauthenticated / budget)))
    return max(min(configured, MIN_HANDSHAKE_TIMEOUT), configured * share)


class Listener:
    """Accepts TLS clients for ``acceptor``; ``start``, then ``stop_accepting`` and ``close``.

    ``reconfigure`` changes its limits and TLS context for the clients accepted after it.
    """

    def __init__(
        self,
        settings: Settings,
        context: ssl.SSLContext,
        acceptor: Acceptor,
        budget: QueueBudget | None = None,
    ) -> None:
        """``budget``: bytes queued for clients, shared with the server's other listeners."""
        self._host = settings.server.host
        self._port = settings.server.port
        # Read under _lock at each use, so that reconfigure() applies to the next client.
        self._settings = settings
        self.budget = budget or QueueBudget(settings.limits.max_queued_bytes_total)
        self._context = context
        self._acceptor = acceptor
        self._writer = Writer()
        self._reader = Reader()
        self._sockets: list[socket.socket] = []
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="chatsecure-accept", daemon=True
        )
        self._lock = threading.Lock()  # guards the connection registry below
        self._connections: dict[Connection, threading.Thread] = {}
        self._per_address: Counter[str] = Counter()
        # Connections not logged in yet, with the address block each is counted in.
        self._unauthenticated: dict[Connection, str] = {}
        self._unauthenticated_per_block: Counter[str] = Counter()
        self._last_refusal_log = -REFUSAL_LOG_INTERVAL
        self._refused_unlogged = 0
        self._slow_consumers = 0  # connections dropped for not reading, since start
        # Held while a session opens, so none opens once the listener stops accepting.
        self._session_gate = threading.Lock()
        self._stopping = False
        self._started = False
        self._closed = False
        self._deadline = 0.0  # for close(): set by stop_accepting

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where we listen, as (host, port) pairs; valid after ``start``."""
        return [s.getsockname()[:2] for s in self._sockets]

    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def unauthenticated_count(self) -> int:
        with self._lock:
            return len(self._unauthenticated)

    def slow_consumer_drops(self) -> int:
        with self._lock:
            return self._slow_consumers

    def reconfigure(self, settings: Settings, context: ssl.SSLContext) -> None:
        """New limits and TLS context for the connections accepted from now on.

        Connections already open keep the context they shook hands with. The address
        is not changed: that takes a new listener.
        """
        with self._lock:
            self._settings, self._context = settings, context

    def start(self) -> None:
        """Bind, listen and start the writer and accept threads; raises ``OSError``."""
        try:
            self._bind()
        except OSError:
            self.close()
            raise
        self._started = True
        for sock in self._sockets:
            self._selector.register(sock, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._writer.start()
        self._reader.start()
        self._accept_thread.start()

    def _bind(self) -> None:
        infos = socket.getaddrinfo(
            self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        seen: set[tuple[object, ...]] = set()
        port = self._port
        last_error: OSError | None = None
        for family, kind, proto, _name, resolved in infos:
            # With port 0 (tests), every address must share the port the first one got.
            sockaddr = (resolved[0], port, *resolved[2:])
            if sockaddr in seen:
                continue
            seen.add(sockaddr)
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    # "::" serves IPv4 too; an explicit IPv6 address serves only itself,
                    # so "localhost" can bind ::1 and 127.0.0.1 side by side.
                    only_v6 = not ipaddress.ip_address(sockaddr[0]).is_unspecified
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(only_v6))
                sock.bind(sockaddr)
                sock.listen(BACKLOG)
                sock.setblocking(False)
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EADDRNOTAVAIL:
                    self._close_sockets()
                    raise
                last_error = exc  # e.g. ::1 on a host without IPv6: use the others
                continue
            self._sockets.append(sock)
            port = sock.getsockname()[1]
        if not self._sockets:
            raise last_error or OSError(f"no address to listen on for {self._host!r}")

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    # --- the accept thread ------------------------------------------------------------

    def _accept_loop(self) -> None:
        while True:
            for key, _mask in self._selector.select():
                if key.fileobj is self._wake_r:
                    return
                assert isinstance(key.fileobj, socket.socket)
                self._accept_one(key.fileobj)

    def _accept_one(self, server: socket.socket) -> None:
        try:
            sock, peer = server.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:
            log.warning("accept failed: %s", exc)
            time.sleep(ACCEPT_ERROR_PAUSE)
            return
        address = peer_ip(peer[0])
        conn = self._admit(sock, (address, peer[1]))
        if conn is None:
            sock.close()
            return
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            self._start_thread(conn)
        except (OSError, RuntimeError) as exc:
            log.warning("%s: cannot start a connection thread: %s", conn.label, exc)
            conn.abort()
            self._forget(conn)
            sock.close()

    def _admit(self, sock: socket.socket, peer: tuple[str, int]) -> Connection | None:
        """A new connection, or None (and a rate-limited warning) when over a limit."""
        address = peer[0]
        block = address_block(address)
        with self._lock:
            limits = self._settings.limits
            unauthenticated = len(self._unauthenticated)
            if len(self._connections) >= limits.max_connections:
                reason = f"max_connections ({limits.max_connections}) reached"
            elif self._per_address[address] >= limits.max_connections_per_address:
                reason = (
                    f"max_connections_per_address ({limits.max_connections_per_address}) reached"
                )
            elif unauthenticated >= limits.max_unauthenticated:
                reason = f"max_unauthenticated ({limits.max_unauthenticated}) reached"
            elif self._unauthenticated_per_block[block] >= limits.max_unauthenticated_per_address:
                reason = (
                    f"max_unauthenticated_per_address ({limits.max_unauthenticated_per_address}) "
                    f"reached for {block}"
                )
            else:
                conn = Connection(
                    sock,
                    peer,
                    self._context,
                    self._writer,
                    self._reader,
                    handshake_timeout=handshake_timeout(
                        self._settings.tls.handshake_timeout,
                        unauthenticated,
                        limits.max_unauthenticated,
                    ),
                    max_unsent_bytes=limits.max_queued_bytes,
                    budget=self.budget,
                    drain_timeout=limits.drain_timeout,
                    slow_consumer_farewell=self._acceptor.slow_consumer_farewell,
                    open_session=self._open_session,
                    on_login=self._logged_in,
                    on_exit=self._forget,
                )
                self._connections[conn] = threading.Thread(
                    target=conn.run, name=f"chatsecure-conn-{conn.label}", daemon=True
                )
                self._per_address[address] += 1
                self._unauthenticated[conn] = block
                self._unauthenticated_per_block[block] += 1
                return conn
            self._refused_unlogged += 1
            now = time.monotonic()
            if now - self._last_refusal_log < REFUSAL_LOG_INTERVAL:
                return None
            refused, self._refused_unlogged = self._refused_unlogged, 0
            self._last_refusal_log = now
        log.warning("refused %d connection(s), latest from %s: %s", refused, address, reason)
        return None

    def _start_thread(self, conn: Connection) -> None:
        """Start the connection's thread with the configured (small) stack.

        ``threading.stack_size`` is process-wide, so it is set only around this start.
        """
        with self._lock:
            thread = self._connections[conn]
            stack_bytes = self._settings.server.thread_stack_kib * 1024
        previous = threading.stack_size(stack_bytes)
        try:
            thread.start()
        finally:
            threading.stack_size(previous)

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            if self._connections.pop(conn, None) is None:
                return
            self._slow_consumers += int(conn.dropped_as_slow)
            self._per_address[conn.address] -= 1
            if not self._per_address[conn.address]:
                del self._per_address[conn.address]
            self._authenticated(conn)

    def _logged_in(self, conn: Connection) -> None:
        with self._lock:
            self._authenticated(conn)

    def _authenticated(self, conn: Connection) -> None:
        """Take ``conn`` out of the unauthenticated budget (logged in, or gone); locked."""
        block = self._unauthenticated.pop(conn, None)
        if block is not None:
            self._unauthenticated_per_block[block] -= 1
            if not self._unauthenticated_per_block[block]:
                del self._unauthenticated_per_block[block]

    def _open_session(self, conn: Connection) -> SessionPort | None:
        with self._session_gate:
            if self._stopping:
                return None
            return self._acceptor.open_session(conn, conn.address)

    # --- shutdown -----------------------------------------------------------------------

    def stop_accepting(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Accept no more clients and open no more sessions; hurry the writer.

        Sessions already open stay open, so the chat service can say goodbye to them
        before ``close``, which gives the goodbyes up to ``grace`` s from now to leave.
        """
        if self._stopping:
            return
        self._deadline = time.monotonic() + grace
        if self._started:
            self._wake_w.send(b"\0")
            if self._accept_thread.is_alive():
                self._accept_thread.join(1.0)
        self._close_sockets()
        with self._session_gate:
            self._stopping = True
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            if not conn.attached:  # still in the handshake: no session to say goodbye to
                conn.abort()
        self._writer.hurry()

    def close(self) -> None:
        """Flush what is queued until the grace period ends, then cut and close everything."""
        if self._closed:
            return
        self.stop_accepting()
        self._closed = True
        if not self._started:
            self._writer.stop(0.0)
            self._reader.stop(0.0)
            self._release()
            return
        deadline = self._deadline
        if not self._writer.wait_idle(max(deadline - time.monotonic(), 0.0)):
            log.warning(
                "%d connection(s) still closing after the grace period; cutting them",
                self._writer.live_count(),
            )
        self._writer.stop(1.0)
        with self._lock:
            connections = dict(self._connections)
        for conn, thread in connections.items():
            conn.abort()
            if thread.ident is not None:  # started
                thread.join(max(deadline + 1.0 - time.monotonic(), 0.1))
        self._reader.stop(1.0)
        self._release()

    def _release(self) -> None:
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
