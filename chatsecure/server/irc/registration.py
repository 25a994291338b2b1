"""What registering takes besides the commands: credentials from PASS or SASL PLAIN, and
a link that holds the hub's news until the client has heard its welcome."""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from dataclasses import dataclass

from chatsecure.names import is_valid_username
from chatsecure.server.core.results import Welcome
from chatsecure.server.link import SEPARATE_LINKS, Carrier, Link

SASL_CHUNK = 400  # AUTHENTICATE payloads come in chunks of this many characters
MAX_SASL_PAYLOAD = 4 * SASL_CHUNK  # base64 of a 32-character name and a long password


class HoldingLink:
    """A link that keeps what is sent until ``release``, up to ``max_bytes``.

    Past the cap the client is treated as the transport treats a slow reader: it gets
    ``overflow`` and is closed.
    """

    carrier: Carrier = SEPARATE_LINKS  # a broadcast goes through send, held or not

    def __init__(self, link: Link, max_bytes: int, overflow: bytes) -> None:
        self._link = link
        self._max = max_bytes
        self._overflow = overflow
        self._lock = threading.Lock()
        self._held: list[bytes] | None = []
        self._size = 0

    def send(self, data: bytes) -> None:
        with self._lock:
            if self._held is None:
                self._link.send(data)
                return
            self._held.append(data)
            self._size += len(data)
            if self._size > self._max:
                self._held = []
                self._link.send(self._overflow)
                self._link.close()

    def close(self) -> None:
        self._link.close()

    def aside(self, work: Callable[[], None]) -> None:
        self._link.aside(work)

    def unsent_bytes(self) -> int:
        return self._size + self._link.unsent_bytes()

    def release(self) -> None:
        """Send what was held, in order, and pass everything straight on from now."""
        with self._lock:
            held, self._held = self._held or [], None
            self._size = 0
            for data in held:
                self._link.send(data)


@dataclass(slots=True)
class Registration:
    """What the client has said so far to register, and a SASL login's welcome."""

    nick: str | None = None
    user_given: bool = False
    password: str | None = None  # from PASS
    negotiating: bool = False  # CAP LS or REQ seen, CAP END not yet
    sasl_mechanism: bool = False  # AUTHENTICATE PLAIN said, payload awaited
    sasl_payload: str = ""
    welcome: Welcome | None = None  # a SASL login, waiting for registration to end
    held: HoldingLink | None = None


def pass_credentials(password: str, nick: str) -> tuple[str, str]:
    """``PASS user:password``, or ``PASS password`` for the account named like the nick."""
    user, colon, rest = password.partition(":")
    if colon and is_valid_username(user):
        return user, rest
    return nick, password


def sasl_plain(payload: str) -> tuple[str, str] | None:
    """(user, password) from a SASL PLAIN payload, or None if it is not one."""
    try:
        decoded = base64.b64decode(payload, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    parts = decoded.split("\0")
    if len(parts) != 3:
        return None
    authzid, user, password = parts
    if authzid and authzid != user:
        return None
    return user, password
