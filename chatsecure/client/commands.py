"""Slash commands typed into the message entry: ``/join``, ``/leave``, ``/msg``.

``parse`` turns a line into one small typed command, or an error string to show, so the
entry's behaviour is tested without a window. ``//text`` sends ``/text`` literally.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatsecure.client.validation import message_error, room_error, username_error
from chatsecure.names import normalize_room

HELP = "Commands: /join ROOM, /leave [ROOM], /msg USER TEXT (start with // to send a '/')."


@dataclass(frozen=True, slots=True)
class SayText:
    """Plain text for the current conversation."""

    text: str


@dataclass(frozen=True, slots=True)
class JoinRoom:
    room: str


@dataclass(frozen=True, slots=True)
class LeaveRoom:
    room: str | None  # None: the current room


@dataclass(frozen=True, slots=True)
class DirectMessage:
    user: str
    text: str


Command = SayText | JoinRoom | LeaveRoom | DirectMessage


def parse(line: str) -> Command | str:
    """The command in ``line``, or an error message for the person who typed it."""
    if not line.startswith("/"):
        return _checked_text(SayText(line))
    if line.startswith("//"):
        return _checked_text(SayText(line[1:]))
    name, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    if name == "join":
        return room_error(rest) or JoinRoom(normalize_room(rest) or rest)
    if name == "leave":
        if not rest:
            return LeaveRoom(None)
        return room_error(rest) or LeaveRoom(normalize_room(rest) or rest)
    if name == "msg":
        user, _, text = rest.partition(" ")
        if not user or not text.strip():
            return "Usage: /msg USER TEXT"
        return username_error(user) or _checked_text(DirectMessage(user, text))
    return f"Unknown command /{name}. {HELP}"


def _checked_text(command: SayText | DirectMessage) -> Command | str:
    return message_error(command.text) or command
