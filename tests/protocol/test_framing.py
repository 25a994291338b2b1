"""LineFramer: splitting, terminators, blank lines and the exact size cap."""

from __future__ import annotations

import time

import pytest

from chatsecure.protocol import ErrorCode, LineFramer, RemoteProtocolError

SAMPLES: list[tuple[bytes, list[bytes]]] = [
    (b"a\n", [b"a"]),
    (b"a\nb\n", [b"a", b"b"]),
    (b"a\r\nb\r\n", [b"a", b"b"]),
    (b"\n\r\n  \n{}\n\n", [b"{}"]),
    (b"one\ntwo", [b"one"]),
    (b"x\ry\n", [b"x\ry"]),
    (b"", []),
]


def drain(framer: LineFramer) -> list[bytes]:
    lines = []
    while (line := framer.next_line()) is not None:
        lines.append(line)
    return lines


@pytest.mark.parametrize(("data", "expected"), SAMPLES)
def test_whole_chunk(data: bytes, expected: list[bytes]) -> None:
    framer = LineFramer(100)
    framer.feed(data)
    assert drain(framer) == expected


@pytest.mark.parametrize(("data", "expected"), SAMPLES)
def test_one_byte_at_a_time(data: bytes, expected: list[bytes]) -> None:
    framer = LineFramer(100)
    lines = []
    for byte in data:
        framer.feed(bytes([byte]))
        lines += drain(framer)
    assert lines == expected


def test_incomplete_line_waits_for_its_newline() -> None:
    framer = LineFramer(100)
    framer.feed(b"hel")
    assert framer.next_line() is None
    framer.feed(b"lo\n")
    assert framer.next_line() == b"hello"
    assert framer.buffered_bytes == 0


@pytest.mark.parametrize("terminator", [b"\n", b"\r\n"])
def test_line_of_exactly_the_cap_passes(terminator: bytes) -> None:
    framer = LineFramer(10)
    line = b"x" * (10 - len(terminator))
    framer.feed(line + terminator)
    assert framer.next_line() == line


@pytest.mark.parametrize("terminator", [b"\n", b"\r\n"])
def test_one_byte_over_the_cap_fails(terminator: bytes) -> None:
    framer = LineFramer(10)
    framer.feed(b"x" * (11 - len(terminator)) + terminator)
    with pytest.raises(RemoteProtocolError) as caught:
        framer.next_line()
    assert caught.value.code is ErrorCode.FRAME_TOO_LARGE


def test_incomplete_line_fails_as_soon_as_it_cannot_fit() -> None:
    framer = LineFramer(10)
    framer.feed(b"x" * 9)
    assert framer.next_line() is None  # a newline would still make exactly 10
    framer.feed(b"x")
    with pytest.raises(RemoteProtocolError):
        framer.next_line()
    assert framer.buffered_bytes == 0


def test_framing_stays_lost_after_an_oversized_line() -> None:
    framer = LineFramer(10)
    framer.feed(b"x" * 20 + b"\nok\n")
    for _ in range(2):
        with pytest.raises(RemoteProtocolError):
            framer.next_line()
    framer.feed(b"more\n")
    assert framer.buffered_bytes == 0


def test_oversized_line_behind_good_ones_fails_only_when_reached() -> None:
    framer = LineFramer(10)
    framer.feed(b"ok\n" + b"x" * 20)
    assert framer.next_line() == b"ok"
    with pytest.raises(RemoteProtocolError):
        framer.next_line()


def test_discard_drops_buffer_and_later_data() -> None:
    framer = LineFramer(100)
    framer.feed(b"a\nb")
    framer.discard()
    framer.feed(b"c\n")
    assert framer.next_line() is None
    assert framer.buffered_bytes == 0


def test_cap_must_leave_room_for_a_line() -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        LineFramer(1)


def test_linear_time_for_byte_at_a_time_and_big_chunks() -> None:
    """A quadratic rescan would take minutes here; a linear one well under a second."""
    cap = 1 << 18
    framer = LineFramer(cap)
    started = time.perf_counter()
    for _ in range(cap - 1):
        framer.feed(b"x")
        assert framer.next_line() is None
    framer.feed(b"\n")
    assert framer.next_line() == b"x" * (cap - 1)
    framer.feed(b"line\n" * 200_000)
    assert len(drain(framer)) == 200_000
    assert time.perf_counter() - started < 10
