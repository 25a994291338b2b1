"""The naming rules of the contract: usernames, room names, message text and topics.

They live here, stdlib-only, because the protocol, the store and the admin CLI
all enforce the same rules and none of them may import another for it.
"""

from __future__ import annotations

import enum
import re

USERNAME_MAX = 32
ROOM_MAX = 32
TOPIC_MAX_CHARS = 300  # a room's topic, and a kick's or ban's reason
SEARCH_MAX_CHARS = 200  # the words of a search

_USERNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}", re.ASCII)
_ROOM = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}", re.ASCII)
# C0 controls except tab (0x09) and newline (0x0A), and the C1 controls (0x80-0x9F):
# terminals obey both (U+009B is CSI, U+0085 a line break), so text that carries them
# could rewrite what a reader of a log or an export sees.
_FORBIDDEN_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x80-\x9f]")
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_character(text: str) -> bool:
    """Whether ``text`` holds a control character, newline and tab included: a topic or
    a reason is one line."""
    return _LINE_CONTROL.search(text) is not None


# The control characters that end a line (as str.splitlines counts them).
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85")


def line_problem(text: str) -> str | None:
    """What keeps ``text`` from being one line, in words for a person: "a line break",
    "a tab" or "a control character (U+0007)"; None if nothing does."""
    found = _LINE_CONTROL.search(text)
    if found is None:
        return None
    char = found.group()
    if char in _LINE_BREAKS:
        return "a line break"
    if char == "\t":
        return "a tab"
    return f"a control character (U+{ord(char):04X})"


def is_valid_username(name: str) -> bool:
    """1 to 32 of ``A-Z a-z 0-9 _ . -``, not starting with ``.`` or ``-``."""
    return _USERNAME.fullmatch(name) is not None


def username_key(name: str) -> str:
    """The case-folded key that makes ``Alice`` and ``alice`` one account."""
    return name.lower()


def normalize_room(name: str) -> str | None:
    """The room's canonical (lower-case) name, or ``None`` if it is not a valid name."""
    lowered = name.lower()
    return lowered if _ROOM.fullmatch(lowered) else None


class TextProblem(enum.Enum):
    """Why a message text is refused; the protocol maps each to its error code."""

    CONTROL_CHARACTER = "text contains a control character other than newline or tab"
    EMPTY = "text is empty"
    TOO_LONG = "text is too long"


def text_problem(text: str, max_chars: int) -> TextProblem | None:
    """What is wrong with ``text`` as a message, or ``None`` if it may be sent."""
    if _FORBIDDEN_CONTROL.search(text):
        return TextProblem.CONTROL_CHARACTER
    if not text.strip():
        return TextProblem.EMPTY
    if len(text) > max_chars:
        return TextProblem.TOO_LONG
    return None
