"""The network thread: one TLS connection to the server, with login and reconnection.

The window's thread never waits on the network. It calls ``request`` (which queues the
request and wakes this thread through a socket pair) and reads ``NetworkEvent``\\ s from
a ``queue.Queue``. This thread owns the socket and the sans-IO ``ClientConnection``; it
answers the server's pings itself and hands every other frame on as ``FrameArrived``.

Trust: with a CA file the chain and host name are verified by OpenSSL. Without one the
certificate's SHA-256 fingerprint must equal the one pinned for ``host:port``; an unknown
certificate is reported as ``TrustNeeded`` (the caller asks and pins), a different one is
refused. Either way the password is sent only after the server has been verified.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import queue
import random
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from chatsecure.client.events import (
    ConnectionLost,
    Failure,
    FrameArrived,
    LoggedIn,
    LoggedOut,
    LoginFailed,
    NetworkEvent,
    SessionEnded,
    TrustNeeded,
)
from chatsecure.client.trust import TrustStore, Verdict, changed_certificate_message, fingerprint
from chatsecure.protocol import (
    Bye,
    ByeReason,
    ClientConnection,
    ClientPong,
    Error,
    ErrorCode,
    Hello,
    Login,
    Logout,
    ProtocolError,
    Request,
    ServerFrame,
    ServerPing,
    UnknownFrame,
    Welcome,
)

RECV_BYTES = 65536
CONNECT_TIMEOUT = 10.0
# How long a login may take: the server checks bcrypt hashes, possibly queued behind others.
LOGIN_TIMEOUT = 30.0
# A single write may wait this long for a full socket buffer before the link counts as dead.
WRITE_TIMEOUT = 30.0
LOGOUT_GRACE = 2.0

BAD_CREDENTIALS = "Invalid username or password, or the account is disabled."


@dataclass(frozen=True, slots=True)
class ServerAddress:
    host: str
    port: int
    ca_file: Path | None = None  # None: trust on first use


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = dataclasses.field(repr=False)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential delays with jitter, so many clients do not reconnect in lockstep."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        base = min(self.cap, self.first * self.factor ** max(0, attempt - 1))
        return base * random.uniform(0.75, 1.0)  # noqa: S311 - jitter, not a secret


# Bye reasons after which reconnecting would only undo what the server meant to do.
_FINAL_BYES: dict[str, str] = {
    ByeReason.ACCOUNT_DISABLED: "Your account was disabled by an administrator.",
    ByeReason.KICKED: "An administrator disconnected you. Log in again to come back.",
    ByeReason.CREDENTIALS_CHANGED: "Your password was changed. Log in with the new one.",
}


class _Failed(Exception):
    """Connecting or logging in did not work; ``final`` when retrying cannot help."""

    def __init__(self, event: LoginFailed | TrustNeeded, *, final: bool) -> None:
        super().__init__(getattr(event, "message", "certificate not yet trusted"))
        self.event = event
        self.final = final


class _Stopped(Exception):
    """The caller asked this thread to stop."""


class NetworkClient:
    """One person's connection: started once, then ``request``, ``logout`` or ``close``."""

    def __init__(
        self,
        events: queue.Queue[NetworkEvent],
        address: ServerAddress,
        credentials: Credentials,
        trust: TrustStore,
        *,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.address = address
        self.credentials = credentials
        self._events = events
        self._trust = trust
        self._backoff = backoff
        self._outgoing: deque[Request] = deque()
        self._req_ids = itertools.count(1)
        self._req_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._logout = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatsecure-network", daemon=True)

    # -- the caller's side (any thread; never blocks on the network) -------------------

    def start(self) -> None:
        self._thread.start()

    def request(self, request: Request) -> int:
        """Queue ``request`` with a fresh ``req`` id, which is returned for matching replies."""
        with self._req_lock:
            req = next(self._req_ids)
        self._outgoing.append(dataclasses.replace(request, req=req))
        self._wake()
        return req

    def logout(self) -> None:
        """Say goodbye to the server; ``LoggedOut`` follows."""
        self._logout.set()
        self._wake()

    def close(self) -> None:
        """Stop at once (the window is closing); no more events are reported."""
        self._stop.set()
        self._wake()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _wake(self) -> None:
        # A full pair means it is already awake; a closed one means the thread has ended.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"!")

    # -- the network thread -------------------------------------------------------------

    def _emit(self, event: NetworkEvent) -> None:
        if not self._stop.is_set():
            self._events.put(event)

    def _run(self) -> None:
        try:
            self._connect_loop()
        except _Stopped:
            pass
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _connect_loop(self) -> None:
        attempt = 0
        logged_in_before = False
        reason = ""
        unanswered: tuple[int, ...] = ()
        while True:
            if attempt:
                delay = self._backoff.delay(attempt)
                self._emit(ConnectionLost(reason, attempt, delay, unanswered))
                unanswered = ()
                self._sleep(delay)
            try:
                sock, conn = self._open()
                try:
                    user, rooms, features = self._login(sock, conn)
                except BaseException:
                    sock.close()
                    raise
            except _Failed as failed:
                if failed.final or not logged_in_before:
                    self._finish(failed.event, logged_in_before)
                    return
                attempt += 1
                reason = str(failed)
                if isinstance(failed.event, LoginFailed) and failed.event.retry_after:
                    self._sleep(failed.event.retry_after)
                continue
            self._emit(LoggedIn(user, rooms, reconnected=logged_in_before, features=features))
            logged_in_before = True
            attempt = 0
            with sock:
                outcome, unanswered = self._serve(sock, conn)
            if outcome is None:
                self._emit(LoggedOut())
                return
            if outcome in _FINAL_BYES:
                self._emit(SessionEnded(_FINAL_BYES[outcome]))
                return
            attempt = 1
            reason = outcome

    def _finish(self, event: LoginFailed | TrustNeeded, logged_in_before: bool) -> None:
        if not logged_in_before:
            self._emit(event)
        elif isinstance(event, LoginFailed):
            self._emit(SessionEnded(f"Could not log in again: {event.message}"))
        else:
            self._emit(SessionEnded("The server's certificate is no longer trusted."))

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    # -- connecting ---------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        ca_file = self.address.ca_file
        if ca_file is not None:
            try:
                return ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                message = f"The CA file {ca_file} cannot be used: {exc}."
                raise _Failed(LoginFailed(Failure.UNTRUSTED, message), final=True) from None
        # Trust on first use: OpenSSL cannot verify a certificate no CA vouches for, so
        # verification is the exact fingerprint comparison in _check_pin, before any
        # request (the password above all) is sent.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def _open(self) -> tuple[ssl.SSLSocket, ClientConnection]:
        host, port = self.address.host, self.address.port
        try:
            raw = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            message = (
                f"Cannot reach the server at {host}:{port} ({_reason(exc)}). "
                "Check the host and port, and that the server is running."
            )
            raise _Failed(LoginFailed(Failure.UNREACHABLE, message), final=False) from None
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            sock = self._context().wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            message = (
                f"The server's certificate is not trusted: {exc.verify_message}. "
                f"Check that the CA file ({self.address.ca_file}) is the one of this server "
                "and that the host name matches its certificate."
            )
            raise _Failed(LoginFailed(Failure.UNTRUSTED, message), final=True) from None
        except (ssl.SSLError, OSError) as exc:
            raw.close()
            message = (
                f"The secure (TLS) connection to {host}:{port} failed ({_reason(exc)}). "
                "Is this a chatsecure server, speaking TLS 1.2 or newer?"
            )
            raise _Failed(LoginFailed(Failure.TLS_FAILURE, message), final=False) from None
        if self.address.ca_file is None:
            try:
                self._check_pin(sock)
            except BaseException:
                sock.close()
                raise
        return sock, ClientConnection()

    def _check_pin(self, sock: ssl.SSLSocket) -> None:
        host, port = self.address.host, self.address.port
        der = sock.getpeercert(binary_form=True)
        if der is None:
            message = f"{host}:{port} presented no certificate."
            raise _Failed(LoginFailed(Failure.UNTRUSTED, message), final=True)
        seen = fingerprint(der)
        verdict = self._trust.check(host, port, seen)
        if verdict is Verdict.UNKNOWN:
            raise _Failed(TrustNeeded(host, port, seen), final=True)
        if verdict is Verdict.CHANGED:
            pinned = self._trust.pinned(host, port) or ""
            message = changed_certificate_message(host, port, pinned, seen, self._trust.path)
            raise _Failed(LoginFailed(Failure.CERT_CHANGED, message), final=True)

    def _login(
        self, sock: ssl.SSLSocket, conn: ClientConnection
    ) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """The user, their rooms, and the additions the server announced in ``hello``."""
        deadline = time.monotonic() + LOGIN_TIMEOUT
        hello = self._read_frame(sock, conn, deadline)
        if not isinstance(hello, Hello) or hello.server != "chatsecure" or hello.version != 1:
            message = f"{self.address.host}:{self.address.port} is not a chatsecure server."
            raise _Failed(LoginFailed(Failure.PROTOCOL, message), final=False)
        req = "login"
        creds = self.credentials
        self._write(sock, conn, Login(username=creds.username, password=creds.password, req=req))
        while True:
            frame = self._read_frame(sock, conn, deadline)
            if isinstance(frame, Welcome):
                return frame.user, frame.rooms, hello.features
            if isinstance(frame, Error) and frame.req == req:
                raise _Failed(_login_error(frame), final=frame.code != ErrorCode.RATE_LIMITED)
            if isinstance(frame, Bye):
                message = f"The server closed the connection ({frame.reason})."
                raise _Failed(LoginFailed(Failure.PROTOCOL, message), final=False)

    def _read_frame(
        self, sock: ssl.SSLSocket, conn: ClientConnection, deadline: float
    ) -> ServerFrame | UnknownFrame:
        """The next frame, waiting at most until ``deadline`` (login phase only)."""
        try:
            while (frame := conn.next_event()) is None:
                if self._stop.is_set():
                    raise _Stopped
                sock.settimeout(max(0.01, min(0.5, deadline - time.monotonic())))
                try:
                    data = sock.recv(RECV_BYTES)
                except TimeoutError:
                    if time.monotonic() >= deadline:
                        raise
                    continue
                if not data:
                    raise ConnectionError("the server closed the connection")
                conn.receive_data(data)
        except (OSError, ProtocolError) as exc:
            message = f"Logging in to {self.address.host} failed: {_reason(exc)}."
            raise _Failed(LoginFailed(Failure.PROTOCOL, message), final=False) from None
        if isinstance(frame, ServerPing):
            self._write(sock, conn, ClientPong(req=frame.req))
            return self._read_frame(sock, conn, deadline)
        return frame

    def _write(self, sock: ssl.SSLSocket, conn: ClientConnection, request: Request) -> None:
        sock.settimeout(WRITE_TIMEOUT)
        try:
            sock.sendall(conn.send(request))
        finally:
            sock.setblocking(False)

    # -- logged in --------------------------------------------------------------------

    def _serve(
        self, sock: ssl.SSLSocket, conn: ClientConnection
    ) -> tuple[str | None, tuple[int, ...]]:
        """Relay frames and requests until the connection ends.

        Returns ``None`` after a logout, else why the connection was lost, with the ids of
        the requests that were written but not answered.
        """
        waiting: set[int] = set()
        logout_deadline: float | None = None
        sock.setblocking(False)
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            try:
                while True:
                    if self._stop.is_set():
                        raise _Stopped
                    bye = self._relay_frames(sock, conn, waiting)
                    if bye is not None:
                        return (None if bye == ByeReason.LOGOUT else bye), tuple(sorted(waiting))
                    if logout_deadline is None:
                        if self._logout.is_set():
                            self._write(sock, conn, Logout())
                            logout_deadline = time.monotonic() + LOGOUT_GRACE
                        else:
                            self._flush(sock, conn, waiting)
                    elif time.monotonic() > logout_deadline:
                        return None, ()
                    selector.select(timeout=0.5 if logout_deadline else None)
                    self._drain_wake()
                    if not self._receive(sock, conn):
                        if logout_deadline is not None:
                            return None, ()
                        return "the server closed the connection", tuple(sorted(waiting))
            except (OSError, ProtocolError) as exc:
                if logout_deadline is not None:
                    return None, ()
                return _reason(exc), tuple(sorted(waiting))

    def _receive(self, sock: ssl.SSLSocket, conn: ClientConnection) -> bool:
        """Feed what the socket has to ``conn``; ``False`` at end of stream."""
        while True:
            try:
                data = sock.recv(RECV_BYTES)
            except (ssl.SSLWantReadError, BlockingIOError):
                return True
            if not data:
                return False
            conn.receive_data(data)
            if not sock.pending():
                return True

    def _relay_frames(
        self, sock: ssl.SSLSocket, conn: ClientConnection, waiting: set[int]
    ) -> str | None:
        """Hand on every complete frame; returns a ``bye`` reason if one came."""
        while (frame := conn.next_event()) is not None:
            if isinstance(frame, UnknownFrame):
                continue  # a newer server's addition; the contract says to ignore it
            if isinstance(frame, ServerPing):
                self._write(sock, conn, ClientPong(req=frame.req))
                continue
            req = getattr(frame, "req", None)
            if isinstance(req, int):
                waiting.discard(req)
            if isinstance(frame, Bye):
                return frame.reason
            self._emit(FrameArrived(frame))
        return None

    def _flush(self, sock: ssl.SSLSocket, conn: ClientConnection, waiting: set[int]) -> None:
        while self._outgoing:
            request = self._outgoing[0]
            self._write(sock, conn, request)
            self._outgoing.popleft()
            if isinstance(request.req, int):
                waiting.add(request.req)

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass


def _login_error(error: Error) -> LoginFailed:
    if error.code == ErrorCode.AUTH_FAILED:
        return LoginFailed(Failure.BAD_CREDENTIALS, BAD_CREDENTIALS)
    if error.code == ErrorCode.RATE_LIMITED:
        wait = error.retry_after or 0
        message = f"Too many failed logins. Try again in {_duration(wait)}."
        return LoginFailed(Failure.THROTTLED, message, retry_after=wait)
    return LoginFailed(Failure.PROTOCOL, f"The server refused the login: {error.message}")


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{(seconds + 59) // 60} minutes"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unknown host: {exc.strerror}"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
