"""The server's side of one connection, as a sans-IO state machine (after h11).

Bytes in (``receive_data``), events out (``next_event``), frames in and bytes out
(``send``). The object never touches a socket, so the server core and the tests
drive it alike. Which requests are legal in which state, and which frames may be
sent in which state, are tables below rather than branches in the code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatsecure.protocol.codec import encode, parse_fields, read_envelope
from chatsecure.protocol.errors import (
    ByeReason,
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from chatsecure.protocol.events import (
    REQUEST_WIRE_TYPES,
    SERVER_FRAME_TYPES,
    Bye,
    ClientPing,
    ClientPong,
    Error,
    Hello,
    Login,
    Request,
    ServerFrame,
    ServerPing,
    ServerPong,
)
from chatsecure.protocol.framing import LineFramer

DEFAULT_MAX_FRAME_BYTES = 65_536
DEFAULT_MAX_TEXT_CHARS = 4_000
MAX_BAD_FRAMES_IN_A_ROW = 10


class ConnectionState(enum.Enum):
    """Where one connection is in its life; it decides what may be read and sent."""

    AWAITING_LOGIN = enum.auto()
    AUTHENTICATED = enum.auto()
    CLOSING = enum.auto()
    """A violation ends the connection: the error and ``bye`` may still be sent."""
    CLOSED = enum.auto()
    """``bye`` was sent or the transport is gone: nothing more in or out."""


def _wire_types(*kinds: type[Request]) -> frozenset[str]:
    return frozenset(kind.TYPE for kind in kinds)


# State -> (request types it accepts, error code and message for the other known types).
# States missing here read nothing more.
_ACCEPTS: dict[ConnectionState, tuple[frozenset[str], ErrorCode, str]] = {
    ConnectionState.AWAITING_LOGIN: (
        _wire_types(Login, ClientPing, ClientPong),
        ErrorCode.NOT_AUTHENTICATED,
        "log in first",
    ),
    ConnectionState.AUTHENTICATED: (
        REQUEST_WIRE_TYPES - _wire_types(Login),
        ErrorCode.ALREADY_AUTHENTICATED,
        "this connection is already logged in",
    ),
}

# State -> frame types the server may send in it. Before login nothing that belongs
# to an account (messages, presence, ...) can leak out.
_SENDS: dict[ConnectionState, frozenset[type[ServerFrame]]] = {
    ConnectionState.AWAITING_LOGIN: frozenset({Hello, Error, ServerPong, ServerPing, Bye}),
    ConnectionState.AUTHENTICATED: frozenset(SERVER_FRAME_TYPES),
    ConnectionState.CLOSING: frozenset({Error, Bye}),
    ConnectionState.CLOSED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Violation:
    """The peer broke a rule: send ``error``; if ``close`` is set, then ``Bye(close)`` and close.

    A closing violation moves the connection to ``CLOSING``, which reads nothing more.
    """

    error: Error
    close: ByeReason | None = None


class ServerConnection:
    """One client connection as seen by the server, from ``hello`` to ``bye``.

    Pull events one at a time and act on each before the next: a ``Login`` must be
    answered (``login_succeeded()`` on success) before the next event is read, or a
    request pipelined behind it is judged in the wrong state.
    """

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.max_text_chars = max_text_chars
        self._framer = LineFramer(max_frame_bytes)
        self._bad_in_a_row = 0
        self._failed_in_a_row = 0  # requests the server could not complete
        self._enter(ConnectionState.AWAITING_LOGIN)

    def _enter(self, state: ConnectionState) -> None:
        # The state's rows are looked up once here, not per frame: hashing an Enum
        # member runs Python code.
        self._state = state
        self._accepts = _ACCEPTS.get(state)
        self._sends = _SENDS[state]

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not yet turned into events; below ``max_frame_bytes`` once drained."""
        return self._framer.buffered_bytes

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; once the connection is closing they are dropped."""
        self._framer.feed(data)

    def next_event(self) -> Request | Violation | None:
        """The next legal request, a ``Violation`` to answer, or ``None`` until more data."""
        if self._accepts is None:
            return None
        try:
            line = self._framer.next_line()
        except RemoteProtocolError as error:
            return self._violation(error, ByeReason.FRAME_TOO_LARGE)
        if line is None:
            return None
        try:
            envelope = read_envelope(line)
            accepted, refusal, reason = self._accepts
            if envelope.type not in accepted:
                raise RemoteProtocolError(refusal, reason, envelope.req)
            request = parse_fields(envelope, self.max_text_chars)
        except RemoteProtocolError as error:
            self._bad_in_a_row += 1
            too_many = self._bad_in_a_row > MAX_BAD_FRAMES_IN_A_ROW
            return self._violation(error, ByeReason.TOO_MANY_ERRORS if too_many else None)
        self._bad_in_a_row = 0
        return request

    def request_failed(self, req: str | int | None) -> Violation:
        """The server could not complete request ``req``: the ``server_error`` to send.

        Counted like bad frames: past ``MAX_BAD_FRAMES_IN_A_ROW`` failures in a row the
        client gets ``too_many_errors``, so no client keeps the server failing for ever.
        """
        self._failed_in_a_row += 1
        too_many = self._failed_in_a_row > MAX_BAD_FRAMES_IN_A_ROW
        error = LocalProtocolError(
            ErrorCode.SERVER_ERROR, "the server could not complete the request", req
        )
        return self._violation(error, ByeReason.TOO_MANY_ERRORS if too_many else None)

    def request_completed(self) -> None:
        """A request was carried out (or refused by the rules): failures are no longer in a row."""
        self._failed_in_a_row = 0

    def login_succeeded(self) -> None:
        """The core accepted the credentials; call it before sending ``Welcome``.

        From now on the account's requests are legal and its frames may be sent.
        """
        if self._state is not ConnectionState.AWAITING_LOGIN:
            raise LocalProtocolError(
                ErrorCode.SERVER_ERROR, f"login_succeeded() while {self._state.name}"
            )
        self._enter(ConnectionState.AUTHENTICATED)

    def hello(self, server_version: str | None = None, features: tuple[str, ...] = ()) -> bytes:
        """The greeting to send right after the TLS handshake, naming the server's release
        and the contract's Additions it serves."""
        hello = Hello(
            max_frame_bytes=self.max_frame_bytes, server_version=server_version, features=features
        )
        return self.send(hello)

    def send(self, frame: ServerFrame, *, encoded: bytes | None = None) -> bytes:
        """The bytes to write for ``frame``; sending ``Bye`` closes the connection.

        Pass ``encoded`` (from ``codec.encode(frame)``) when one frame goes to many
        connections: it is encoded once, and each connection still checks its state.
        """
        if type(frame) not in self._sends:
            raise LocalProtocolError(
                ErrorCode.SERVER_ERROR,
                f"cannot send {frame.TYPE!r} while {self._state.name}",
            )
        if isinstance(frame, Bye):
            self.close()
        return encode(frame) if encoded is None else encoded

    def close(self) -> None:
        """Nothing more is read or sent, e.g. because the transport went away."""
        self._enter(ConnectionState.CLOSED)
        self._framer.discard()

    def _violation(self, error: ProtocolError, close: ByeReason | None) -> Violation:
        if close is not None:
            self._enter(ConnectionState.CLOSING)
            self._framer.discard()
        reply = Error(code=error.code, message=error.message, req=error.req)
        return Violation(reply, close)
