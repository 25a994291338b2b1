"""Trust on first use: server certificate fingerprints pinned per ``host:port``.

Used only when no CA file is configured. The pin is the SHA-256 of the whole DER
certificate, compared exactly; a different certificate for a known server is refused,
never accepted with a click, because that is what an impersonator would present.

A server is one pin however its address is spelled: the host is canonical (a name in
lower case, an IP address as the resolver reads it, so ``127.1`` and ``2130706433`` are
``127.0.0.1``), or a new spelling would get a first-use prompt where the certificate
should have been refused as changed. Pin files keep the ``host:port`` keys they always
had; keys written with another spelling are read as their canonical form.
"""

from __future__ import annotations

import enum
import hashlib
import socket
from pathlib import Path

from chatsecure.client.profile import config_dir, read_json, write_json

TRUST_FILE = "known_servers.json"


def fingerprint(der: bytes) -> str:
    """``AB:CD:...``: a DER certificate's SHA-256, as ``openssl x509 -fingerprint`` shows it."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class Verdict(enum.Enum):
    TRUSTED = "trusted"  # pinned, and the same certificate
    UNKNOWN = "unknown"  # never seen: ask the person
    CHANGED = "changed"  # pinned to a different certificate: refuse


def canonical_host(host: str) -> str:
    """``host`` as pins know it: an IP address in its canonical form, else the name in lower case.

    An address is read as the connection will read it (``getaddrinfo``, numeric only, so
    no lookup happens): also the short and hexadecimal IPv4 forms, and IPv6 in any form.
    """
    bare = host.removeprefix("[").removesuffix("]")
    try:
        infos = socket.getaddrinfo(bare, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):  # a name, not an address
        return host.lower()
    # getnameinfo writes it back in canonical form, an IPv6 zone (fe80::1%eth0) included.
    return socket.getnameinfo(infos[0][4], socket.NI_NUMERICHOST)[0]


def server_key(host: str, port: int) -> str:
    return f"{canonical_host(host)}:{port}"


def _canonical_key(key: str) -> str:
    """A pin file's key (``host:port``, perhaps an older spelling of host) made canonical."""
    host, _, port = key.rpartition(":")
    return f"{canonical_host(host)}:{port}" if host else key


class TrustStore:
    """The pinned fingerprints, one JSON object ``{"host:port": "AB:CD:..."}``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / TRUST_FILE

    def _entries(self) -> dict[str, str]:
        """The file's pins as written, keys in whatever spelling they were written."""
        data = read_json(self.path)
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def _fingerprints(self, host: str, port: int) -> set[str]:
        """Every fingerprint pinned for this server, under any spelling of its address."""
        key = server_key(host, port)
        return {v for k, v in self._entries().items() if _canonical_key(k) == key}

    def pinned(self, host: str, port: int) -> str | None:
        """The pinned fingerprint; several (one per line) if older spellings disagree."""
        return "\n".join(sorted(self._fingerprints(host, port))) or None

    def check(self, host: str, port: int, seen: str) -> Verdict:
        pinned = self._fingerprints(host, port)
        if not pinned:
            return Verdict.UNKNOWN
        # Spellings that disagree trust neither fingerprint: one of them may be an impostor's.
        return Verdict.TRUSTED if pinned == {seen} else Verdict.CHANGED

    def remember(self, host: str, port: int, seen: str) -> None:
        key = server_key(host, port)
        pins = {k: v for k, v in self._entries().items() if _canonical_key(k) != key}
        pins[key] = seen
        write_json(self.path, pins)

    def forget(self, host: str, port: int) -> None:
        key = server_key(host, port)
        entries = self._entries()
        pins = {k: v for k, v in entries.items() if _canonical_key(k) != key}
        if len(pins) != len(entries):
            write_json(self.path, pins)


def changed_certificate_message(host: str, port: int, pinned: str, seen: str, path: Path) -> str:
    """The loud refusal: what a changed certificate may mean and how to proceed safely."""
    return (
        f"WARNING: the certificate of {host}:{port} has CHANGED.\n\n"
        "Someone may be impersonating the server (a man-in-the-middle attack), or the "
        "administrator has generated a new certificate. The connection was refused and "
        "your password was not sent.\n\n"
        f"Trusted fingerprint (SHA-256):\n{pinned}\n\n"
        f"Fingerprint presented now:\n{seen}\n\n"
        "Ask the administrator for the server's fingerprint through another channel. "
        f"If it matches the new one, remove the entry for {server_key(host, port)} from "
        f"{path} and connect again (or use the server's CA file with --ca)."
    )
