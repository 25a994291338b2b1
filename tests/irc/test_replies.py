"""Texts as IRC lines and back: split to fit, never cut short; formatting and actions."""

from __future__ import annotations

from chatsecure.server.irc.replies import message_lines, split_text, text_from_irc
from chatsecure.storage.store import StoredFile, StoredMessage


def test_long_text_is_split_never_truncated_and_utf8_stays_whole():
    text = "word " * 300 + "ü" * 400
    pieces = split_text(text, 100)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 100 for p in pieces)
    assert all(p.encode().decode() == p for p in pieces)


def test_each_line_of_a_text_is_its_own_piece_and_blank_lines_are_left_out():
    assert split_text("one\ntwo\n\n  \nthree", 400) == ["one", "two", "three"]


def test_irc_formatting_is_dropped_and_an_action_becomes_me():
    assert text_from_irc("\x02bold\x02 \x0304,12red\x03 \x1ditalic\x0f") == "bold red italic"
    assert text_from_irc("\x01ACTION waves\x01") == "/me waves"


def test_a_message_line_carries_the_tags_its_reader_asked_for():
    m = StoredMessage(7, 1795255200123, "bob", "hi", room="dev")
    (plain,) = message_lines(m, frozenset())
    assert (plain.source, plain.params, plain.tags) == ("bob!bob@chatsecure", ("#dev", "hi"), {})
    (tagged,) = message_lines(m, frozenset({"server-time", "message-tags", "account-tag"}))
    assert tagged.tags == {"time": "2026-11-21T10:00:00.123Z", "msgid": "7", "account": "bob"}


def test_a_me_text_goes_out_as_an_action_split_like_any_other():
    m = StoredMessage(1, 0, "bob", "/me " + "waves " * 200, to="alice")
    lines = message_lines(m, frozenset())
    assert len(lines) > 1
    assert all(
        x.params[1].startswith("\x01ACTION ") and x.params[1].endswith("\x01") for x in lines
    )
    assert all(len(x.params[1].encode()) < 512 for x in lines)


def test_a_shared_file_says_what_it_is_and_where_to_get_it():
    shared = StoredFile("f1", "report.pdf", 123456, "0" * 64, "application/pdf")
    m = StoredMessage(8, 1795255200123, "bob", "report.pdf", room="dev", file=shared)
    (line,) = message_lines(m, frozenset())
    assert line.params == (
        "#dev",
        "[file] report.pdf (123,456 bytes; open it in the chatsecure client)",
    )
