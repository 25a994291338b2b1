"""``chatsecure-admin status``: the running server as a client and Prometheus see it.

It connects over TLS like any client and reads ``hello``: the server answers, and says its
release. The certificate it presents is compared with ``[tls] cert_file``, which tells a
renewal that still waits for a reload. Uptime and sessions come from the server's
metrics endpoint (``[metrics] listen``), which already shows them to whoever may scrape
it, so no chat user ever gets a request that reveals them.
"""

from __future__ import annotations

import socket
import ssl
import urllib.request
from dataclasses import dataclass
from ipaddress import ip_address

from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from chatsecure.config import Settings, split_address
from chatsecure.protocol import (
    DEFAULT_MAX_SERVER_FRAME_BYTES,
    Hello,
    LineFramer,
    parse_server_frame,
)
from chatsecure.tls_certs import fingerprint, load_certificate

TIMEOUT = 5.0
# The metrics status shows, by name, and how it labels them.
SHOWN = {
    "chatsecure_open_connections": "connections",
    "chatsecure_sessions_logged_in": "sessions logged in",
    "chatsecure_users_online": "users online",
}


class StatusError(Exception):
    """The server did not answer as a chatsecure server; the message says what happened."""


@dataclass(frozen=True, slots=True)
class Greeting:
    """What the server's TLS handshake and ``hello`` showed."""

    server_version: str | None
    fingerprint: str


def reachable_host(host: str) -> str:
    """Where to connect for a server listening on ``host``: "all addresses" is loopback."""
    try:
        unspecified = ip_address(host).is_unspecified
    except ValueError:
        return host
    if not unspecified:
        return host
    return "::1" if ":" in host else "127.0.0.1"


def greet(host: str, port: int) -> Greeting:
    """Connect, shake hands and read ``hello``; raise StatusError if it goes wrong.

    The certificate is not verified here: it is compared with ``cert_file`` by the caller.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        with (
            socket.create_connection((host, port), timeout=TIMEOUT) as raw,
            context.wrap_socket(raw) as sock,
        ):
            der = sock.getpeercert(binary_form=True)
            line = _first_line(sock)
    except (OSError, ssl.SSLError) as exc:
        raise StatusError(f"no chatsecure server answers on {host}:{port}: {exc}") from None
    frame = parse_server_frame(line)
    if not isinstance(frame, Hello) or der is None:
        raise StatusError(f"{host}:{port} did not greet with a chatsecure hello")
    return Greeting(frame.server_version, fingerprint(x509.load_der_x509_certificate(der)))


def _first_line(sock: ssl.SSLSocket) -> bytes:
    framer = LineFramer(DEFAULT_MAX_SERVER_FRAME_BYTES)
    while (line := framer.next_line()) is None:
        data = sock.recv(65536)
        if not data:
            raise OSError("the connection closed before hello")
        framer.feed(data)
    return line


def scrape(listen: str) -> dict[str, float]:
    """The server's metrics, by sample name; raise StatusError if they cannot be read."""
    host, port = split_address(listen)
    host = reachable_host(host)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"http://{where}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            text = response.read().decode("utf-8")
    except OSError as exc:
        raise StatusError(f"cannot read the metrics at {url}: {exc}") from None
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def certificate_note(settings: Settings, presented: str) -> str:
    """Whether the server presents ``cert_file``; a renewal may still await a reload."""
    try:
        configured = fingerprint(load_certificate(settings.tls.cert_file))
    except (OSError, ValueError) as exc:
        return f"presented {presented}; cannot read {settings.tls.cert_file}: {exc}"
    if configured == presented:
        return f"{presented} (the one in {settings.tls.cert_file})"
    return (
        f"{presented}, not the one in {settings.tls.cert_file}: "
        "reload the server (SIGHUP, systemctl reload chatsecure) to serve it"
    )
