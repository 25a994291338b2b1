"""Search results as the window lists them: where, who, when, and a snippet of the text.

A result's ``key`` and ``id`` are what opening it needs; the rest is for reading. The
snippet starts near the first word searched for, so long messages show why they matched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatsecure.client.state import ChatState, ConvKey, Kind
from chatsecure.protocol import Message

SNIPPET_CHARS = 90
LEAD_CHARS = 25  # how much text before the first match a snippet keeps


@dataclass(frozen=True, slots=True)
class SearchHit:
    key: ConvKey
    title: str  # the room's name or the peer's, as the server spells it
    id: int
    author: str
    ts: str
    snippet: str

    @property
    def where(self) -> str:
        return f"#{self.title}" if self.key.kind is Kind.ROOM else self.title


def query_words(q: str) -> list[str]:
    """The words of a query, quotes dropped, case-folded."""
    return [word.casefold() for word in re.findall(r"\w+", q)]


def snippet(text: str, q: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` on one line and at most ``limit`` characters, around the first word of ``q``."""
    flat = " ".join(text.split())
    folded = flat.casefold()
    found = [i for i in (folded.find(word) for word in query_words(q)) if i >= 0]
    start = max(0, min(found) - LEAD_CHARS) if found else 0
    if start:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < min(found) else start
    piece = ("…" if start else "") + flat[start:]
    return piece if len(piece) <= limit else piece[: limit - 1] + "…"


def hits(state: ChatState, q: str, results: tuple[Message, ...]) -> tuple[SearchHit, ...]:
    found = []
    for message in results:
        key, title = state.key_of(message)
        text = message.file.name if message.file is not None else message.text or ""
        found.append(SearchHit(key, title, message.id, message.from_, message.ts,
                               snippet(text, q)))  # fmt: skip
    return tuple(found)
