"""The client's side of a connection, sans-IO: for the GUI, the benchmarks and the tests.

It only frames, encodes and parses; what the frames mean is up to the caller.
"""

from __future__ import annotations

import itertools

from chatsecure.protocol.codec import encode, parse_server_frame
from chatsecure.protocol.events import Request, ServerFrame, UnknownFrame
from chatsecure.protocol.framing import LineFramer

# Server frames may be large (history pages, member lists); the contract asks
# clients to accept at least 8 MiB.
DEFAULT_MAX_SERVER_FRAME_BYTES = 16 * 1024 * 1024


class ClientConnection:
    """Bytes from the server in, typed frames out; requests in, bytes to send out.

    Requests are sent exactly as given. ``new_req()`` hands out 1, 2, 3, ... for
    callers that want to match replies to requests; nothing is assigned behind
    their back.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_SERVER_FRAME_BYTES) -> None:
        self._framer = LineFramer(max_frame_bytes)
        self._req_ids = itertools.count(1)

    def new_req(self) -> int:
        """A request id this connection has not handed out before."""
        return next(self._req_ids)

    def receive_data(self, data: bytes) -> None:
        self._framer.feed(data)

    def next_event(self) -> ServerFrame | UnknownFrame | None:
        """The next server frame, or ``None`` until more data arrives.

        Raises ``RemoteProtocolError`` for a frame that is malformed or too large.
        """
        line = self._framer.next_line()
        return None if line is None else parse_server_frame(line)

    def send(self, request: Request) -> bytes:
        """The bytes to write for ``request``."""
        return encode(request)
