"""IRC lines as typed messages and back, with IRCv3 tags: sans-IO, no state but a buffer.

``LineReader`` cuts a byte stream into lines (CRLF or bare LF) and never holds more than
one line's worth: a longer line is reported once and skipped up to its end. ``parse``
turns one line into a ``Message``; ``encode`` does the reverse and refuses to produce a
line a client could not read. The limits are those of the message-tags spec: 512 bytes
for the message itself (CRLF included) plus up to 4096 for a client's tags and 8191 for
a server's.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_BODY_BYTES = 512  # the classic line, CRLF included
MAX_CLIENT_TAG_BYTES = 4096  # "@" + 4094 bytes of tags + " "
MAX_SERVER_TAG_BYTES = 8191
MAX_CLIENT_LINE_BYTES = MAX_CLIENT_TAG_BYTES + MAX_BODY_BYTES

_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class LineProblem(enum.Enum):
    """Why a line from a client is not a message."""

    TOO_LONG = "input line was too long"
    NOT_UTF8 = "input is not valid UTF-8"
    MALFORMED = "input line is not an IRC message"


class BadLine(Exception):
    def __init__(self, problem: LineProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


class UnsendableMessage(ValueError):
    """We tried to send a message IRC cannot carry: a bug on our side, not the client's."""


@dataclass(frozen=True, slots=True)
class Message:
    """One IRC message; a tag without a value has the value ``""``."""

    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def with_tags(self, **extra: str) -> Message:
        """This message with ``extra`` tags added (or replaced)."""
        return Message(self.command, self.params, self.source, {**self.tags, **extra})


def escape_tag_value(value: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in value)


def unescape_tag_value(raw: str) -> str:
    """The message-tags unescaping: an unknown escape is the character itself; a lone
    trailing backslash is dropped."""
    if "\\" not in raw:
        return raw
    out: list[str] = []
    chars = iter(raw)
    for c in chars:
        if c != "\\":
            out.append(c)
            continue
        following = next(chars, "")
        out.append(_UNESCAPES.get(following, following))
    return "".join(out)


def _parse_tags(raw: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        if not key:
            raise BadLine(LineProblem.MALFORMED)
        tags[key] = unescape_tag_value(value)
    return tags


def parse(line: bytes) -> Message:
    """One line (without its line ending) as a message; raises ``BadLine``."""
    tags: dict[str, str] = {}
    body = line
    if line.startswith(b"@"):
        raw_tags, _, body = line.partition(b" ")
        if len(raw_tags) + 1 > MAX_CLIENT_TAG_BYTES:
            raise BadLine(LineProblem.TOO_LONG)
        tags = _parse_tags(_text(raw_tags[1:]))
    body = body.lstrip(b" ")
    if len(body) + 2 > MAX_BODY_BYTES:
        raise BadLine(LineProblem.TOO_LONG)
    text = _text(body)
    if "\0" in text or "\r" in text:
        raise BadLine(LineProblem.MALFORMED)
    source = None
    if text.startswith(":"):
        source, _, text = text[1:].partition(" ")
        text = text.lstrip(" ")
    head, colon, trailing = text.partition(" :")
    words = head.split()
    if not words:
        raise BadLine(LineProblem.MALFORMED)
    command, params = words[0].upper(), words[1:]
    if not (command.isascii() and (command.isalpha() or command.isdigit())):
        raise BadLine(LineProblem.MALFORMED)
    if colon:
        params.append(trailing)
    return Message(command, tuple(params), source, tags)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadLine(LineProblem.NOT_UTF8) from None


def _tag_part(tags: Mapping[str, str]) -> bytes:
    items = (f"{k}={escape_tag_value(v)}" if v else k for k, v in tags.items())
    part = f"@{';'.join(items)} ".encode()
    if len(part) > MAX_SERVER_TAG_BYTES:
        raise UnsendableMessage(f"tags of {len(part)} bytes")
    return part


def body_bytes(source: str | None, command: str, params: tuple[str, ...]) -> bytes:
    """The message without tags and line ending, as it goes on the wire."""
    words = [f":{source}", command] if source else [command]
    for i, param in enumerate(params):
        last = i == len(params) - 1
        needs_colon = not param or " " in param or param.startswith(":")
        if "\r" in param or "\n" in param or "\0" in param or (needs_colon and not last):
            raise UnsendableMessage(f"parameter {param!r} of {command}")
        words.append(f":{param}" if needs_colon else param)
    return " ".join(words).encode()


def encode(message: Message) -> bytes:
    """The message as a CRLF-terminated line; raises ``UnsendableMessage`` if too long."""
    body = body_bytes(message.source, message.command, message.params)
    if len(body) + 2 > MAX_BODY_BYTES:
        raise UnsendableMessage(f"{message.command} of {len(body) + 2} bytes")
    head = _tag_part(message.tags) if message.tags else b""
    return head + body + b"\r\n"


def encode_all(messages: list[Message]) -> bytes:
    return b"".join(encode(m) for m in messages)


class LineReader:
    """Cuts bytes into lines; holds at most ``max_line_bytes`` of an unfinished one."""

    def __init__(self, max_line_bytes: int = MAX_CLIENT_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._buffer = bytearray()
        self._skipping = False  # inside a line already reported as too long

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_line(self) -> bytes | LineProblem | None:
        """The next complete, non-empty line; a problem; or None until more data comes."""
        buffer = self._buffer
        while True:
            if self._skipping:
                end = buffer.find(b"\n")
                if end < 0:
                    del buffer[:]
                    return None
                del buffer[: end + 1]
                self._skipping = False
            end = buffer.find(b"\n", 0, self._max + 1)
            if end < 0:
                if len(buffer) <= self._max:
                    return None
                self._skipping = True
                return LineProblem.TOO_LONG
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip(b" "):
                return line
