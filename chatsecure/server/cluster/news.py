"""What nodes tell each other over the bus: hints at new messages, and a few events.

A hint says "room r (or account a's direct messages) has messages up to id s"; the
receiver reads from the database what it has not delivered. Events say what the database
cannot hint at cheaply: an account came online or went offline on a node, an account
joined or left a room, a node is leaving. Everything is a hint or a shortcut: a node
that misses some catches up from the database on its heartbeat, so the bus may lose or
repeat news. Items keep their order; a payload stays under PostgreSQL's NOTIFY limit.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# PostgreSQL's NOTIFY payload must stay below 8000 bytes.
MAX_PAYLOAD_BYTES = 7000


@dataclass(frozen=True, slots=True)
class Presence:
    account: int
    online: bool


@dataclass(frozen=True, slots=True)
class Membership:
    account: int
    user: str
    room: str
    joined: bool  # False: left


@dataclass(slots=True)
class News:
    """One node's news since it last published, hints coalesced to the newest id."""

    node: str
    rooms: dict[str, int] = field(default_factory=dict)  # room -> newest message id
    directs: dict[int, int] = field(default_factory=dict)  # account -> newest direct id
    events: list[Presence | Membership] = field(default_factory=list)
    leaving: bool = False

    def hint_room(self, room: str, message_id: int) -> None:
        self.rooms[room] = max(message_id, self.rooms.get(room, 0))

    def hint_direct(self, account: int, message_id: int) -> None:
        self.directs[account] = max(message_id, self.directs.get(account, 0))

    def __bool__(self) -> bool:
        return bool(self.rooms or self.directs or self.events or self.leaving)


def _items(news: News) -> list[list[object]]:
    items: list[list[object]] = [["r", room, upto] for room, upto in news.rooms.items()]
    items += [["d", account, upto] for account, upto in news.directs.items()]
    for event in news.events:
        if isinstance(event, Presence):
            items.append(["p", event.account, event.online])
        else:
            items.append(["m", event.account, event.user, event.room, event.joined])
    if news.leaving:
        items.append(["x"])
    return items


def encode(news: News) -> list[str]:
    """``news`` as JSON payloads, each under ``MAX_PAYLOAD_BYTES``, in order."""
    payloads: list[str] = []
    batch: list[str] = []
    size = 0
    for item in _items(news):
        text = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        if batch and size + len(text.encode()) > MAX_PAYLOAD_BYTES:
            payloads.append(_payload(news.node, batch))
            batch, size = [], 0
        batch.append(text)
        size += len(text.encode()) + 1
    if batch:
        payloads.append(_payload(news.node, batch))
    return payloads


def _payload(node: str, items: list[str]) -> str:
    return '{"n":' + json.dumps(node) + ',"i":[' + ",".join(items) + "]}"


def decode(payload: str) -> News | None:
    """The news in a payload; None (and a warning) if it is not one of ours."""
    try:
        raw = json.loads(payload)
        news = News(str(raw["n"]))
        for item in raw["i"]:
            kind = item[0]
            if kind == "r":
                news.hint_room(str(item[1]), int(item[2]))
            elif kind == "d":
                news.hint_direct(int(item[1]), int(item[2]))
            elif kind == "p":
                news.events.append(Presence(int(item[1]), bool(item[2])))
            elif kind == "m":
                news.events.append(
                    Membership(int(item[1]), str(item[2]), str(item[3]), bool(item[4]))
                )
            elif kind == "x":
                news.leaving = True
    except (ValueError, TypeError, KeyError, IndexError):
        log.warning("ignored a bus payload that is not chatsecure news: %.80r", payload)
        return None
    return news
