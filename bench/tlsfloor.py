"""``python -m bench.tlsfloor``: what one delivery's TLS write and ``send(2)`` cost from Python.

The floor under the latency scenarios: the transport writer walks every recipient of a
message, and for each one it must at least encrypt the frame (``SSLObject.write`` into a
``MemoryBIO``), take the ciphertext out and ``send`` it. This times exactly that and
nothing else, over ``--connections`` TLS connections on loopback with the server's own
context, one frame of the latency scenario's size per connection per round; a child
process reads everything. Compare its µs per delivery with a server's CPU per delivery
in ``bench/results/latest.md``.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import ssl
import tempfile
import time
from pathlib import Path

from chatsecure.config import TlsSettings
from chatsecure.server.transport.tls import server_context
from chatsecure.tls_certs import CertificatePaths, make_dev_certificates, write_dev_certificates

# A room message frame as the JSON port sends it, with the scenarios' 100-character text.
FRAME = (
    b'{"type":"message","room":"r1000","from":"snd","id":123456,'
    b'"ts":1764800000000,"text":"' + b"x" * 100 + b'"}\n'
)
READ_LIMIT_S = 120.0


class Delivery:
    """The server side of one connection: an ``SSLObject`` over two BIOs and the socket."""

    def __init__(self, raw: socket.socket, context: ssl.SSLContext) -> None:
        self.raw = raw
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if self.outgoing.pending:
                    raw.sendall(self.outgoing.read())
                self.incoming.write(raw.recv(65536))
        if self.outgoing.pending:
            raw.sendall(self.outgoing.read())

    def send(self, frame: bytes) -> None:
        self.tls.write(frame)
        ciphertext = self.outgoing.read()
        sent = 0
        while sent < len(ciphertext):  # the reader keeps up: the socket never stays full
            with memoryview(ciphertext) as view, view[sent:] as rest:
                sent += self.raw.send(rest)


def _read_all(port: int, connections: int, expected: int) -> None:
    """The child: open the TLS connections, then read until every byte has come."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    selector = selectors.DefaultSelector()
    for _ in range(connections):
        conn = context.wrap_socket(
            socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"
        )
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ, conn)
    got = 0
    deadline = time.monotonic() + READ_LIMIT_S
    while got < expected and time.monotonic() < deadline:
        for key, _mask in selector.select(1.0):
            try:
                while data := key.data.recv(65536):
                    got += len(data)
            except ssl.SSLWantReadError:
                pass


def measure(connections: int, rounds: int) -> tuple[float, float, str]:
    """(CPU µs, wall µs) per delivery, and the cipher suite."""
    with tempfile.TemporaryDirectory() as folder:
        paths = CertificatePaths.beside_ca(
            Path(folder, "server.pem"), Path(folder, "server.key"), Path(folder, "ca.pem")
        )
        write_dev_certificates(make_dev_certificates(), paths, overwrite=False)
        context = server_context(TlsSettings(cert_file=paths.cert_file, key_file=paths.key_file))
    listener = socket.create_server(("127.0.0.1", 0), backlog=connections)
    port = listener.getsockname()[1]
    child = os.fork()
    if child == 0:
        try:
            _read_all(port, connections, connections * rounds * len(FRAME))
        finally:
            os._exit(0)
    deliveries = [Delivery(listener.accept()[0], context) for _ in range(connections)]
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        for delivery in deliveries:
            delivery.send(FRAME)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    os.waitpid(child, 0)
    cipher = deliveries[0].tls.cipher()
    count = connections * rounds
    return 1e6 * cpu / count, 1e6 * wall / count, cipher[0] if cipher else "?"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tlsfloor", description=__doc__)
    parser.add_argument("--connections", type=int, default=1000, help="1-5000 (default 1000)")
    parser.add_argument("--rounds", type=int, default=100, help="frames per connection")
    parser.add_argument("--runs", type=int, default=5, help="runs; the median is shown")
    args = parser.parse_args()
    for name, most in (("connections", 5000), ("rounds", 10000), ("runs", 100)):
        if not 1 <= getattr(args, name) <= most:
            parser.error(f"--{name} must be from 1 to {most}")
    runs = [measure(args.connections, args.rounds) for _ in range(args.runs)]
    cpus = sorted(run[0] for run in runs)
    print(
        f"{args.connections} connections x {args.rounds} frames of {len(FRAME)} bytes, "
        f"{runs[0][2]}, {ssl.OPENSSL_VERSION}"
    )
    print(
        f"TLS write + send per delivery: median {cpus[len(cpus) // 2]:.2f} us of CPU "
        f"(runs {cpus[0]:.2f}-{cpus[-1]:.2f})"
    )


if __name__ == "__main__":
    main()
