"""The server's side of one IRC connection, sans-IO: bytes in, commands or violations out.

``IrcConnection`` judges each line once, at the edge: too long, not UTF-8, not a message,
an unknown command (421), too few parameters (461) or a command that needs registration
first (451) become a ``Violation`` carrying the reply; everything else comes out as a
``Message`` the session can trust. Which commands are read in which state, and how many
parameters each needs, are tables below rather than branches.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatsecure.server.irc.codec import BadLine, LineProblem, LineReader, Message, parse

SERVER_NAME = "chatsecure"
# A client that sends this many unusable lines in a row is not an IRC client.
MAX_BAD_LINES_IN_A_ROW = 10


class ConnectionState(enum.Enum):
    REGISTERING = enum.auto()
    REGISTERED = enum.auto()
    CLOSED = enum.auto()
    """The goodbye was sent or the transport is gone: nothing more is read."""


# Every command we know, with the number of parameters it needs at least.
MIN_PARAMS: dict[str, int] = {
    "AUTHENTICATE": 1,
    "AWAY": 0,
    "BATCH": 1,
    "CAP": 1,
    "CHATHISTORY": 3,
    "JOIN": 1,
    "LIST": 0,
    "MODE": 1,
    "MOTD": 0,
    "NAMES": 0,
    "NICK": 1,
    "NOTICE": 2,
    "PART": 1,
    "PASS": 1,
    "PING": 1,
    "PONG": 0,
    "PRIVMSG": 2,
    "QUIT": 0,
    "TOPIC": 1,
    "USER": 4,
    "WHO": 1,
}

# State -> the commands it reads; the others known get 451 (not registered yet). A closed
# connection reads nothing at all.
READS: dict[ConnectionState, frozenset[str]] = {
    ConnectionState.REGISTERING: frozenset(
        {"AUTHENTICATE", "CAP", "NICK", "PASS", "PING", "PONG", "QUIT", "USER"}
    ),
    ConnectionState.REGISTERED: frozenset(MIN_PARAMS),
}

_PROBLEM_REPLIES: dict[LineProblem, tuple[str, ...]] = {
    LineProblem.TOO_LONG: ("417", "Input line was too long"),
    LineProblem.NOT_UTF8: ("FAIL", "*", "INVALID_UTF8", "Input must be UTF-8"),
    LineProblem.MALFORMED: ("FAIL", "*", "INVALID_MESSAGE", "Input is not an IRC message"),
}


@dataclass(frozen=True, slots=True)
class Violation:
    """A line we will not act on, the reply that says why, and whether we hang up."""

    reply: Message
    close: bool = False


Event = Message | Violation


class IrcConnection:
    def __init__(self, max_line_bytes: int) -> None:
        self.state = ConnectionState.REGISTERING
        self.nick = "*"  # what numerics address the client as: "*" until it has a nick
        self._reader = LineReader(max_line_bytes)
        self._bad_in_a_row = 0
        self._failed_in_a_row = 0  # commands the server could not complete

    def numeric(self, code: str, *params: str) -> Message:
        """A reply from the server to this client (a numeric or FAIL-style reply)."""
        if code == "FAIL":
            return Message("FAIL", params, SERVER_NAME)
        return Message(code, (self.nick, *params), SERVER_NAME)

    def receive_data(self, data: bytes) -> None:
        if self.state is not ConnectionState.CLOSED:
            self._reader.receive_data(data)

    def next_event(self) -> Event | None:
        """The next command or violation, or None until more data comes."""
        if self.state is ConnectionState.CLOSED:
            return None
        line = self._reader.next_line()
        if line is None:
            return None
        if isinstance(line, LineProblem):
            return self._bad(line)
        try:
            message = parse(line)
        except BadLine as bad:
            return self._bad(bad.problem)
        self._bad_in_a_row = 0
        return self._judge(message)

    def request_failed(self) -> bool:
        """The server could not complete a command; True once too many failed in a row.

        Counted like bad lines, so no client keeps the server failing for ever.
        """
        self._failed_in_a_row += 1
        return self._failed_in_a_row >= MAX_BAD_LINES_IN_A_ROW

    def request_completed(self) -> None:
        self._failed_in_a_row = 0

    def _bad(self, problem: LineProblem) -> Violation:
        self._bad_in_a_row += 1
        code, *params = _PROBLEM_REPLIES[problem]
        return Violation(self.numeric(code, *params), self._bad_in_a_row >= MAX_BAD_LINES_IN_A_ROW)

    def _judge(self, message: Message) -> Event:
        command = message.command
        needed = MIN_PARAMS.get(command)
        if needed is None:
            return Violation(self.numeric("421", command, "Unknown command"))
        if command not in READS[self.state]:
            return Violation(self.numeric("451", "You have not registered"))
        if len(message.params) < needed:
            return Violation(self.numeric("461", command, "Not enough parameters"))
        return message

    def registered(self, nick: str) -> None:
        self.state = ConnectionState.REGISTERED
        self.nick = nick

    def close(self) -> None:
        self.state = ConnectionState.CLOSED
