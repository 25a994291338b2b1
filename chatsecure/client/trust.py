"""Trust on first use: server certificate fingerprints pinned per ``host:port``.

Used only when no CA file is configured. The pin is the SHA-256 of the whole DER
certificate, compared exactly; a different certificate for a known server is refused,
never accepted with a click, because that is what an impersonator would present.
"""

from __future__ import annotations

import enum
import hashlib
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


def server_key(host: str, port: int) -> str:
    return f"{host.lower()}:{port}"


class TrustStore:
    """The pinned fingerprints, one JSON object ``{"host:port": "AB:CD:..."}``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / TRUST_FILE

    def _pins(self) -> dict[str, str]:
        data = read_json(self.path)
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def pinned(self, host: str, port: int) -> str | None:
        return self._pins().get(server_key(host, port))

    def check(self, host: str, port: int, seen: str) -> Verdict:
        pinned = self.pinned(host, port)
        if pinned is None:
            return Verdict.UNKNOWN
        return Verdict.TRUSTED if pinned == seen else Verdict.CHANGED

    def remember(self, host: str, port: int, seen: str) -> None:
        pins = self._pins()
        pins[server_key(host, port)] = seen
        write_json(self.path, pins)

    def forget(self, host: str, port: int) -> None:
        pins = self._pins()
        if pins.pop(server_key(host, port), None) is not None:
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
