"""What the network thread (and the file hasher) reports, as small immutable events on a
``queue.Queue``.

They are the only thing that crosses from those threads to the window's thread.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatsecure.protocol import ServerFrame


class Failure(enum.Enum):
    """Why connecting or logging in failed; each has its own message for people."""

    UNREACHABLE = "unreachable"
    TLS_FAILURE = "tls_failure"
    UNTRUSTED = "untrusted"
    CERT_CHANGED = "cert_changed"
    BAD_CREDENTIALS = "bad_credentials"
    THROTTLED = "throttled"
    PROTOCOL = "protocol"


@dataclass(frozen=True, slots=True)
class LoginFailed:
    kind: Failure
    message: str
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class TrustNeeded:
    """An unknown server certificate: ask the person, then log in again if they accept."""

    host: str
    port: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class LoggedIn:
    user: str
    rooms: tuple[str, ...]
    reconnected: bool
    features: tuple[str, ...] = ()  # from ``hello``: "rooms2", "edit", "read", …


@dataclass(frozen=True, slots=True)
class FrameArrived:
    frame: ServerFrame


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The connection dropped; the next attempt is ``retry_in`` seconds away."""

    reason: str
    attempt: int
    retry_in: float
    unanswered: tuple[int, ...]  # request ids written to the lost connection


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The session is over for good (kicked, disabled, certificate changed): log in again."""

    message: str


@dataclass(frozen=True, slots=True)
class LoggedOut:
    pass


@dataclass(frozen=True, slots=True)
class FileHashed:
    """A file to send was read through: its size and SHA-256, for the offer."""

    transfer: int
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class HashFailed:
    transfer: int
    message: str


NetworkEvent = (
    LoginFailed
    | TrustNeeded
    | LoggedIn
    | FrameArrived
    | ConnectionLost
    | SessionEnded
    | LoggedOut
    | FileHashed
    | HashFailed
)
