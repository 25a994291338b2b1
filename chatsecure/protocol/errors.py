"""The contract's error codes and bye reasons, and the exceptions that carry them.

Like h11, an error says *who* broke the rules: the peer (``RemoteProtocolError``,
answered with an ``error`` frame) or our own code (``LocalProtocolError``, a bug).
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Every ``code`` an ``error`` frame may carry (protocol version 1)."""

    BAD_FRAME = "bad_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    NOT_AUTHENTICATED = "not_authenticated"
    ALREADY_AUTHENTICATED = "already_authenticated"
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    NO_SUCH_ROOM = "no_such_room"
    NO_SUCH_USER = "no_such_user"
    NOT_MEMBER = "not_member"
    TEXT_TOO_LONG = "text_too_long"
    EMPTY_TEXT = "empty_text"
    WEAK_PASSWORD = "weak_password"
    SERVER_ERROR = "server_error"
    # Additions to the contract (its Additions part): the user may not do this; the
    # room name is taken; the message is unknown or not the user's to read; the user is
    # banned from the room.
    NOT_ALLOWED = "not_allowed"
    ROOM_EXISTS = "room_exists"
    NO_SUCH_MESSAGE = "no_such_message"
    BANNED = "banned"
    # Files: over `[files] max_bytes`; over the user's `[files] quota_bytes`; an upload
    # that went wrong (wrong offset, size or hash; unknown or expired); no file the user
    # may fetch by that id.
    FILE_TOO_LARGE = "file_too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    BAD_UPLOAD = "bad_upload"
    NO_SUCH_FILE = "no_such_file"


class ByeReason(enum.StrEnum):
    """Every ``reason`` a ``bye`` frame may carry (protocol version 1)."""

    LOGOUT = "logout"
    SHUTDOWN = "shutdown"
    LOGIN_TIMEOUT = "login_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    SLOW_CONSUMER = "slow_consumer"
    ACCOUNT_DISABLED = "account_disabled"
    FRAME_TOO_LARGE = "frame_too_large"
    TOO_MANY_ERRORS = "too_many_errors"
    # Additions to the contract: an administrator ended this session; the account's
    # password changed (by its owner elsewhere, or an administrator) since this login.
    KICKED = "kicked"
    CREDENTIALS_CHANGED = "credentials_changed"


class ProtocolError(Exception):
    """A broken protocol rule, with what the ``error`` frame about it should say.

    ``req`` is the request's id when it could be read, so the reply can echo it.
    """

    def __init__(self, code: ErrorCode, message: str, req: str | int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.req = req

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.message!r}, req={self.req!r})"


class RemoteProtocolError(ProtocolError):
    """The peer sent something the contract forbids; tell it so."""


class LocalProtocolError(ProtocolError):
    """Our own code tried to send something the contract forbids: a bug on this side."""
