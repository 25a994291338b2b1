"""The sans-IO IRC codec: lines, tags and limits. Every sample is also fed a byte at a time."""

from __future__ import annotations

import pytest

from chatsecure.server.irc.codec import (
    MAX_BODY_BYTES,
    MAX_CLIENT_TAG_BYTES,
    BadLine,
    LineProblem,
    LineReader,
    Message,
    UnsendableMessage,
    encode,
    escape_tag_value,
    parse,
    unescape_tag_value,
)


def _lines(reader: LineReader) -> list[bytes | LineProblem]:
    out: list[bytes | LineProblem] = []
    while (line := reader.next_line()) is not None:
        out.append(line)
    return out


def read_all(data: bytes, max_line: int = 4608) -> list[bytes | LineProblem]:
    reader = LineReader(max_line)
    reader.receive_data(data)
    return _lines(reader)


def read_bytewise(data: bytes, max_line: int = 4608) -> list[bytes | LineProblem]:
    reader = LineReader(max_line)
    out: list[bytes | LineProblem] = []
    for i in range(len(data)):
        reader.receive_data(data[i : i + 1])
        out += _lines(reader)
    return out


STREAMS = [
    (b"NICK alice\r\nUSER a 0 * :A\r\n", [b"NICK alice", b"USER a 0 * :A"]),
    (b"NICK alice\nUSER a 0 * :A\n", [b"NICK alice", b"USER a 0 * :A"]),
    (b"\r\n\r\nPING x\r\n  \n", [b"PING x"]),  # empty lines are ignored
    (b"PING x\r\nPING y", [b"PING x"]),  # an unfinished line waits
]


@pytest.mark.parametrize(("data", "expected"), STREAMS)
def test_lines_are_cut_at_crlf_or_lf_whole_or_byte_by_byte(data, expected):
    assert read_all(data) == expected
    assert read_bytewise(data) == expected


def test_a_too_long_line_is_reported_once_and_skipped_to_its_end():
    data = b"PRIVMSG #a :" + b"x" * 100 + b"\r\nPING ok\r\n"
    expected = [LineProblem.TOO_LONG, b"PING ok"]
    assert read_all(data, max_line=64) == expected
    assert read_bytewise(data, max_line=64) == expected


def test_the_reader_never_holds_more_than_a_line():
    reader = LineReader(64)
    for _ in range(1000):
        reader.receive_data(b"y" * 50)
        _lines(reader)
        assert len(reader._buffer) <= 64 + 50
    reader.receive_data(b"\nPING z\n")
    assert _lines(reader) == [b"PING z"]


PARSED = [
    (b"PING x", Message("PING", ("x",))),
    (b"privmsg #dev :hello world", Message("PRIVMSG", ("#dev", "hello world"))),
    (b"PRIVMSG #dev ::-)", Message("PRIVMSG", ("#dev", ":-)"))),
    (b"PRIVMSG #dev :", Message("PRIVMSG", ("#dev", ""))),
    (b"USER  a  0 *  :Real Name", Message("USER", ("a", "0", "*", "Real Name"))),
    (
        b":alice!a@h PRIVMSG bob :hi",
        Message("PRIVMSG", ("bob", "hi"), source="alice!a@h"),
    ),
    (
        b"@label=1;+draft/reply=9;flag :s 001 n :Welcome",
        Message("001", ("n", "Welcome"), "s", {"label": "1", "+draft/reply": "9", "flag": ""}),
    ),
    (b"@k=a\\sb\\:c\\\\d\\r\\n PING x", Message("PING", ("x",), tags={"k": "a b;c\\d\r\n"})),
    ("PRIVMSG #dev :grüße ✓".encode(), Message("PRIVMSG", ("#dev", "grüße ✓"))),
]


@pytest.mark.parametrize(("line", "message"), PARSED)
def test_parse(line, message):
    assert parse(line) == message
    assert read_bytewise(line + b"\r\n") == [line]


@pytest.mark.parametrize("message", [m for _, m in PARSED])
def test_encode_then_parse_gives_the_message_back(message):
    data = encode(message)
    assert data.endswith(b"\r\n")
    assert parse(data[:-2]) == message


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("", ""),
        ("plain", "plain"),
        ("\\s\\:\\\\\\r\\n", " ;\\\r\n"),
        ("\\b", "b"),  # an unknown escape is the character itself
        ("end\\", "end"),  # a lone trailing backslash is dropped
    ],
)
def test_tag_values_unescape_as_the_message_tags_spec_says(raw, value):
    assert unescape_tag_value(raw) == value


def test_tag_values_escape_and_round_trip():
    value = "a b;c\\d\r\ne"
    assert escape_tag_value(value) == "a\\sb\\:c\\\\d\\r\\ne"
    assert unescape_tag_value(escape_tag_value(value)) == value


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"PRIVMSG #a :" + b"x" * (MAX_BODY_BYTES - 13), LineProblem.TOO_LONG),
        (b"@" + b"k" * MAX_CLIENT_TAG_BYTES + b" PING x", LineProblem.TOO_LONG),
        (b"PRIVMSG #a :\xff\xfe", LineProblem.NOT_UTF8),
        (b"@k=\xc3 PING x", LineProblem.NOT_UTF8),
        (b":onlyasource", LineProblem.MALFORMED),
        (b"PRIV-MSG x", LineProblem.MALFORMED),
        (b"PING a\x00b", LineProblem.MALFORMED),
        (b"@=v PING x", LineProblem.MALFORMED),
    ],
)
def test_bad_lines_say_what_is_wrong(line, problem):
    with pytest.raises(BadLine) as raised:
        parse(line)
    assert raised.value.problem is problem


def test_the_longest_body_and_tags_a_client_may_send_are_read():
    body = b"PRIVMSG #a :" + b"x" * (MAX_BODY_BYTES - 2 - 12)
    tags = b"@k=" + b"v" * (MAX_CLIENT_TAG_BYTES - 5)
    line = tags + b" " + body
    assert parse(line).params[1] == "x" * (MAX_BODY_BYTES - 14)
    assert read_bytewise(line + b"\r\n") == [line]


def test_encode_refuses_lines_a_client_could_not_read():
    with pytest.raises(UnsendableMessage):
        encode(Message("PRIVMSG", ("#a", "x" * MAX_BODY_BYTES)))
    with pytest.raises(UnsendableMessage):
        encode(Message("PRIVMSG", ("two words", "text")))
    with pytest.raises(UnsendableMessage):
        encode(Message("PRIVMSG", ("#a", "line\r\nQUIT")))
