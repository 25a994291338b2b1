"""Fixtures for the transport: a test CA and certificate, a fake wire, real TLS clients."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from chatsecure.config import Settings, default_settings
from chatsecure.protocol import Bye, ByeReason, Hello, encode
from chatsecure.server.link import Link
from chatsecure.server.transport import Listener, server_context

TIMEOUT = 10.0
CertificateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
HELLO = encode(Hello(server="chatsecure", version=1, max_frame_bytes=65536))
SHUTDOWN_BYE = encode(Bye(reason=ByeReason.SHUTDOWN))


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclasses.dataclass(frozen=True)
class CertificateAuthority:
    folder: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def issue(self, name: str, key: CertificateKey) -> TlsFiles:
        """A server certificate for localhost, 127.0.0.1 and ::1, written next to the CA."""
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        files = TlsFiles(
            self.folder / "ca.pem", self.folder / f"{name}.pem", self.folder / f"{name}.key"
        )
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        files.key.chmod(0o600)  # the server refuses a key other users can read
        return files


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    folder = tmp_path_factory.mktemp("certs")
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("chatsecure test CA"))
        .issuer_name(_name("chatsecure test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(folder, key, cert)


@pytest.fixture(scope="session")
def tls_files(authority: CertificateAuthority) -> TlsFiles:
    """An ECDSA P-256 server certificate."""
    return authority.issue("server", ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def rsa_tls_files(authority: CertificateAuthority) -> TlsFiles:
    """An RSA server certificate: in TLS 1.2 an ECDSA one would tie the client's curve
    list to the certificate's curve, hiding what the key exchange accepts."""
    return authority.issue("server-rsa", rsa.generate_private_key(65537, 2048))


def make_settings(tls_files: TlsFiles, **sections: dict[str, Any]) -> Settings:
    """Defaults on 127.0.0.1, any free port, the test certificate; override by section."""
    base = default_settings()
    server = dataclasses.replace(base.server, host="127.0.0.1", port=0)
    tls = dataclasses.replace(base.tls, cert_file=tls_files.cert, key_file=tls_files.key)
    # The fake core's sessions never log in: the unauthenticated budget is opened wide,
    # and a test about it lowers it.
    limits = dataclasses.replace(
        base.limits, max_unauthenticated=10_000, max_unauthenticated_per_address=10_000
    )
    settings = dataclasses.replace(base, server=server, tls=tls, limits=limits)
    for section, values in sections.items():
        current = getattr(settings, section)
        settings = dataclasses.replace(
            settings, **{section: dataclasses.replace(current, **values)}
        )
    return settings


class FakeSession:
    """Echoes each complete line back; records what happened to it.

    As a real session does, it handles quick lines on the reader thread and sets the
    rest aside: ``LOGIN`` (which logs it in, as far as the listener can tell) and
    ``SLOW`` (which waits for the core's ``gate``), with every line after them. A line
    ``CRASH`` raises on the reader thread.
    """

    def __init__(self, outbox: Link, address: str, echo: bool, gate: threading.Event) -> None:
        self.outbox = outbox
        self.address = address
        self.echo = echo
        self.logged_in = False
        self.received = bytearray()
        self.lost = threading.Event()
        self.lost_calls = 0
        self.slow_started = threading.Event()
        self._gate = gate
        self._partial = b""
        self._lines: list[bytes] = []

    def receive(self, data: bytes) -> None:
        self.received += data
        if not self.echo:
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        self._lines += lines
        self._answer_lines(inline=True)

    def _answer_lines(self, *, inline: bool) -> None:
        while self._lines:
            line = self._lines.pop(0)
            if line == b"CRASH":
                raise RuntimeError("a session fault")
            if inline and line in (b"LOGIN", b"SLOW"):
                self.outbox.aside(functools.partial(self._aside, line))
                return
            self._answer(line)

    def _aside(self, line: bytes) -> None:
        self._answer(line)
        self._answer_lines(inline=False)

    def _answer(self, line: bytes) -> None:
        if line == b"LOGIN":
            self.logged_in = True
        elif line == b"SLOW":
            self.slow_started.set()
            assert self._gate.wait(TIMEOUT)
        self.outbox.send(line + b"\n")

    def connection_lost(self) -> None:
        self.lost_calls += 1
        self.lost.set()


class FakeCore:
    """A wire that says hello and hands out echo sessions; ``shutdown`` says `bye` to all."""

    slow_consumer_farewell = encode(Bye(reason=ByeReason.SLOW_CONSUMER))

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.sessions: list[FakeSession] = []
        self.opened = threading.Condition()
        self.shutdown_called = threading.Event()
        self.gate = threading.Event()  # what a SLOW line waits for

    def open_session(self, outbox: Link, address: str) -> FakeSession:
        session = FakeSession(outbox, address, self.echo, self.gate)
        outbox.send(HELLO)
        with self.opened:
            self.sessions.append(session)
            self.opened.notify_all()
        return session

    def wait_sessions(self, count: int) -> list[FakeSession]:
        with self.opened:
            assert self.opened.wait_for(lambda: len(self.sessions) >= count, TIMEOUT)
            return list(self.sessions)

    def shutdown(self) -> None:
        self.shutdown_called.set()
        with self.opened:
            sessions = list(self.sessions)
        for session in sessions:
            session.outbox.send(SHUTDOWN_BYE)
            session.outbox.close()


class Client:
    """A blocking TLS client with timeouts on every call."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self._buffer = b""

    def send_line(self, line: bytes) -> None:
        self.sock.sendall(line + b"\n")

    def read_line(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"EOF; buffered {self._buffer[:80]!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line + b"\n"

    def read_until_eof(self) -> bytes:
        """Everything until the server closes (a reset counts as a close)."""
        data = [self._buffer]
        self._buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError):
                break
            if not chunk:
                break
            data.append(chunk)
        return b"".join(data)

    def close(self) -> None:
        self.sock.close()


def client_context(tls_files: TlsFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files.ca))


def connect(
    address: tuple[str, int],
    context: ssl.SSLContext,
    *,
    rcvbuf: int | None = None,
    read_hello: bool = True,
    raw: socket.socket | None = None,
) -> Client:
    """A TLS client that has read the server's hello; ``raw``: an unconnected socket to use."""
    if raw is None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        raw = socket.socket(family, socket.SOCK_STREAM)
    raw.settimeout(TIMEOUT)
    if rcvbuf is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        raw.connect(address[:2])
        sock = context.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise
    client = Client(sock)
    if read_hello:
        assert client.read_line() == HELLO
    return client


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Server:
    """A started ``Listener`` with its fake core; stopped by the fixture as a host stops."""

    def __init__(self, settings: Settings, core: FakeCore) -> None:
        self.settings = settings
        self.core = core
        self.listener = Listener(settings, server_context(settings.tls), core)
        self.listener.start()
        self.address = self.listener.addresses[0]

    def stop(self) -> None:
        self.listener.stop_accepting()
        self.core.shutdown()
        self.listener.close()


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(tls_files: TlsFiles) -> Iterator[StartServer]:
    """``start_server(core=None, **sections)`` starts a listener; all are stopped after."""
    servers: list[Server] = []

    def start(core: FakeCore | None = None, **sections: dict[str, Any]) -> Server:
        server = Server(make_settings(tls_files, **sections), core or FakeCore())
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def ctx(tls_files: TlsFiles) -> ssl.SSLContext:
    return client_context(tls_files)
