"""What the IRC connection reads in each state, and what it answers to lines it will not."""

from __future__ import annotations

from chatsecure.server.irc.codec import Message
from chatsecure.server.irc.connection import (
    MAX_BAD_LINES_IN_A_ROW,
    ConnectionState,
    IrcConnection,
    Violation,
)


def events(connection: IrcConnection, data: bytes) -> list[Message | Violation]:
    out: list[Message | Violation] = []
    for i in range(len(data)):
        connection.receive_data(data[i : i + 1])
        while (event := connection.next_event()) is not None:
            out.append(event)
    return out


def replies(found: list[Message | Violation]) -> list[tuple[str, ...]]:
    return [(e.reply.command, *e.reply.params) for e in found if isinstance(e, Violation)]


def test_before_registration_only_registration_commands_are_read():
    connection = IrcConnection(4608)
    found = events(connection, b"NICK alice\r\nJOIN #dev\r\nFROB x\r\nUSER a 0 *\r\n")
    assert found[0] == Message("NICK", ("alice",))
    assert replies(found) == [
        ("451", "*", "You have not registered"),
        ("421", "*", "FROB", "Unknown command"),
        ("461", "*", "USER", "Not enough parameters"),
    ]


def test_after_registration_numerics_address_the_nick():
    connection = IrcConnection(4608)
    connection.registered("alice")
    assert connection.state is ConnectionState.REGISTERED
    found = events(connection, b"JOIN #dev\r\nPRIVMSG #dev\r\n")
    assert found[0] == Message("JOIN", ("#dev",))
    assert replies(found) == [("461", "alice", "PRIVMSG", "Not enough parameters")]


def test_bad_input_is_answered_and_too_much_of_it_closes():
    connection = IrcConnection(64)
    found = events(connection, b"PING \xff\r\n" + b"x" * 100 + b"\r\nPING ok\r\n")
    assert replies(found) == [
        ("FAIL", "*", "INVALID_UTF8", "Input must be UTF-8"),
        ("417", "*", "Input line was too long"),
    ]
    assert found[-1] == Message("PING", ("ok",))
    found = events(connection, b"\xff\n" * MAX_BAD_LINES_IN_A_ROW)
    closing = [e for e in found if isinstance(e, Violation) and e.close]
    assert len(closing) == 1
    assert found[-1] is closing[0]


def test_a_closed_connection_reads_nothing():
    connection = IrcConnection(4608)
    connection.close()
    assert events(connection, b"PING x\r\n") == []
