"""Checks on what people type, each returning an error to show, or ``None`` if it is fine.

Plain functions in the manner of idlelib's ``query.py`` ``entry_ok``: the dialogs call
them and show the string, and tests call them without a window. The rules themselves
come from ``chatsecure.names`` and ``chatsecure.passwords``, shared with the server.
"""

from __future__ import annotations

from chatsecure.names import (
    SEARCH_MAX_CHARS,
    TOPIC_MAX_CHARS,
    TextProblem,
    has_control_character,
    is_valid_username,
    normalize_room,
    text_problem,
)
from chatsecure.passwords import WeakPasswordError, check_policy
from chatsecure.protocol import DEFAULT_MAX_TEXT_CHARS


def host_error(host: str) -> str | None:
    host = host.strip()
    if not host:
        return "Enter the server's host name or address."
    if any(c.isspace() for c in host):
        return "A host name cannot contain spaces."
    return None


def parse_port(text: str) -> int | None:
    """The port number in ``text``, or ``None`` if it is not one."""
    text = text.strip()
    if not text.isdigit():
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def port_error(text: str) -> str | None:
    if parse_port(text) is None:
        return "The port must be a number from 1 to 65535."
    return None


def username_error(name: str) -> str | None:
    if not name:
        return "Enter your username."
    if not is_valid_username(name):
        return (
            "A username is 1-32 letters, digits, '_', '.' or '-', "
            "and does not start with '.' or '-'."
        )
    return None


def password_error(password: str) -> str | None:
    return None if password else "Enter your password."


def room_error(name: str) -> str | None:
    if not name.strip():
        return "Enter a room name."
    if normalize_room(name.strip()) is None:
        return "A room name is 1-32 of a-z, 0-9, '_' or '-', starting with a letter or digit."
    return None


def message_error(text: str, max_chars: int = DEFAULT_MAX_TEXT_CHARS) -> str | None:
    problem = text_problem(text, max_chars)
    if problem is None:
        return None
    if problem is TextProblem.TOO_LONG:
        return f"The message is {len(text)} characters long; the limit is {max_chars}."
    return f"Cannot send: {problem.value}."


def new_password_error(username: str, old: str, new: str, again: str) -> str | None:
    if not old:
        return "Enter your current password."
    if new != again:
        return "The new passwords do not match."
    if new == old:
        return "The new password is the same as the current one."
    try:
        check_policy(new, username)
    except WeakPasswordError as weak:
        return f"The new {weak}."
    return None


def _one_line_error(text: str, what: str, limit: int) -> str | None:
    """A line of at most ``limit`` characters without control characters, as the server
    checks it."""
    if len(text) > limit:
        return f"The {what} is {len(text)} characters long; the limit is {limit}."
    if has_control_character(text):
        return f"The {what} cannot contain control characters or line breaks."
    return None


def search_error(q: str) -> str | None:
    """What to search for: 1-200 characters once trimmed, on one line."""
    q = q.strip()
    if not q:
        return "Type what to search for."
    return _one_line_error(q, "search", SEARCH_MAX_CHARS)


def topic_error(text: str, what: str = "topic") -> str | None:
    """A topic or a kick/ban reason: may be empty, at most 300 characters, one line."""
    return _one_line_error(text, what, TOPIC_MAX_CHARS)
