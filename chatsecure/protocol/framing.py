"""Splitting a byte stream into newline-terminated frames, with a capped buffer."""

from __future__ import annotations

from chatsecure.protocol.errors import ErrorCode, RemoteProtocolError


class LineFramer:
    """Buffers received bytes and hands out complete lines, never holding an unbounded one.

    A line counts its terminator (``\\n`` or ``\\r\\n``) towards ``max_line_bytes``,
    as the contract measures frames "newline included". Once a line is too long the
    stream can no longer be split reliably, so every later ``next_line()`` raises.
    """

    def __init__(self, max_line_bytes: int) -> None:
        if max_line_bytes < 2:
            raise ValueError("max_line_bytes must leave room for a byte and its newline")
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        # Everything before this offset is known to hold no newline, so a line that
        # arrives a byte at a time is scanned once, not once per byte.
        self._scanned = 0
        self._accepting = True
        self._too_large = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet handed out as lines."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Add received bytes; call ``next_line()`` until it returns ``None`` afterwards."""
        if self._accepting:
            self._buffer += data

    def discard(self) -> None:
        """Drop what is buffered and ignore later data: the stream is being abandoned."""
        self._accepting = False
        self._buffer.clear()
        self._scanned = 0

    def next_line(self) -> bytes | None:
        """The next non-blank line without its terminator, or ``None`` until more data comes.

        Raises ``RemoteProtocolError`` (``frame_too_large``) as soon as the current line
        is certain to exceed the cap, so the buffer never grows past it.
        """
        while not self._too_large:
            newline = self._buffer.find(b"\n", self._scanned)
            if newline < 0:
                self._scanned = len(self._buffer)
                # At the cap without a newline: even one arriving next would be too many.
                if self._scanned < self.max_line_bytes:
                    return None
            elif newline < self.max_line_bytes:
                line = bytes(self._buffer[:newline]).removesuffix(b"\r")
                # Deleting from the front of a bytearray is cheap: CPython moves its start.
                del self._buffer[: newline + 1]
                self._scanned = 0
                if line.strip():
                    return line
                continue
            self.discard()
            self._too_large = True
        raise RemoteProtocolError(
            ErrorCode.FRAME_TOO_LARGE,
            f"frame longer than {self.max_line_bytes} bytes, newline included",
        )
