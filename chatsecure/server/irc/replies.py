"""The chat service's words as IRC messages: pure functions, no state.

A room ``dev`` is the channel ``#dev``; an account is a nick. A stored message becomes
one ``PRIVMSG`` per line of its text, each cut to fit the 512-byte line (never
truncated), in one ``draft/multiline`` batch for readers that asked, with the IRCv3 tags
the reader asked for: ``time`` (server-time), ``msgid`` (message-tags) and ``account``
(account-tag).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from chatsecure.names import (
    TOPIC_MAX_CHARS,
    has_control_character,
    is_valid_username,
    normalize_room,
)
from chatsecure.server.core.notices import MemberChange
from chatsecure.server.core.results import (
    Activities,
    Conversation,
    HistoryPage,
    InRoom,
    MemberList,
    WithUser,
)
from chatsecure.server.irc.codec import MAX_BODY_BYTES, Message, body_bytes
from chatsecure.server.irc.connection import SERVER_NAME
from chatsecure.storage.store import StoredFile, StoredMessage
from chatsecure.timestamps import format_ts

SERVER_TIME = "server-time"
MESSAGE_TAGS = "message-tags"
ACCOUNT_TAG = "account-tag"
BATCH = "batch"
ECHO_MESSAGE = "echo-message"
LABELED_RESPONSE = "labeled-response"
CHATHISTORY = "draft/chathistory"
SASL = "sasl"
MULTI_PREFIX = "multi-prefix"
MULTILINE = "draft/multiline"
MULTILINE_CONCAT = "draft/multiline-concat"
MAX_MULTILINE_LINES = 100


def capabilities(max_text_chars: int) -> dict[str, str]:
    """Capability -> its value in ``CAP LS 302``. A multi-line message's ``max-bytes`` is
    ``max_text_chars``: a text of that many bytes has no more characters than that."""
    return {
        ACCOUNT_TAG: "",
        BATCH: "",
        CHATHISTORY: "",
        MULTILINE: f"max-bytes={max_text_chars},max-lines={MAX_MULTILINE_LINES}",
        ECHO_MESSAGE: "",
        LABELED_RESPONSE: "",
        MESSAGE_TAGS: "",
        MULTI_PREFIX: "",
        SASL: "PLAIN",
        SERVER_TIME: "",
    }


# The capabilities that change how a message is sent: readers are grouped by them.
ENCODING_CAPS = frozenset({SERVER_TIME, MESSAGE_TAGS, ACCOUNT_TAG, MULTILINE})

ACTION_PREFIX = "/me "  # how a chatsecure text spells an IRC action (CTCP ACTION)
_CTCP_ACTION = ("\x01ACTION ", "\x01")
# mIRC formatting: bold, colour (with its digits), hex colour, reset, monospace,
# reverse, italics, strikethrough, underline. Not text, and not allowed in a message.
_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
    r"|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)


def user_source(nick: str) -> str:
    return f"{nick}!{nick}@{SERVER_NAME}"


def channel(room: str) -> str:
    return f"#{room}"


def room_of(target: str) -> str | None:
    """The room a channel name means (``#Dev`` -> ``dev``), or None if it is not one."""
    return normalize_room(target[1:]) if target.startswith("#") else None


def conversation_of(target: str) -> Conversation | None:
    """The conversation a channel or nick names, or None if it cannot name one."""
    if target.startswith("#"):
        room = room_of(target)
        return None if room is None else InRoom(room)
    return WithUser(target) if is_valid_username(target) else None


def conversation_target(conversation: Conversation) -> str:
    """The channel or nick an IRC client shows ``conversation`` under."""
    if isinstance(conversation, InRoom):
        return channel(conversation.room)
    return conversation.user


def text_from_irc(text: str) -> str:
    """A PRIVMSG text as chatsecure stores it: formatting dropped, an action as ``/me``."""
    start, end = _CTCP_ACTION
    if text.startswith(start):
        text = ACTION_PREFIX + text[len(start) :].removesuffix(end)
    return _FORMATTING.sub("", text)


def topic_from_irc(text: str) -> str:
    """A TOPIC text as a room's topic: formatting and other controls dropped, cut at
    TOPICLEN as IRC servers do."""
    plain = "".join(c for c in _FORMATTING.sub("", text) if not has_control_character(c))
    return plain[:TOPIC_MAX_CHARS].strip()


def split_lines(text: str, budget: int) -> list[list[str]]:
    """Each line of ``text`` as pieces of at most ``budget`` UTF-8 bytes, cut at a space
    where one is near the end, else between characters. Blank lines are left out: IRC
    cannot send an empty message."""
    lines: list[list[str]] = []
    for line in text.split("\n"):
        pieces: list[str] = []
        rest = line
        while len(rest.encode()) > budget:
            head = rest.encode()[:budget].decode("utf-8", "ignore")
            space = head.rfind(" ")
            cut = space + 1 if space >= len(head) // 2 else len(head)
            pieces.append(rest[:cut])
            rest = rest[cut:]
        if rest.strip():
            pieces.append(rest)
        if pieces:
            lines.append(pieces)
    return lines


def split_text(text: str, budget: int) -> list[str]:
    """``text`` as IRC lines of at most ``budget`` UTF-8 bytes, never truncated."""
    return [piece for line in split_lines(text, budget) for piece in line]


def _budget(source: str, command: str, target: str, wrapper: int) -> int:
    overhead = len(body_bytes(source, command, (target, " "))) - 1 + wrapper
    return MAX_BODY_BYTES - 2 - overhead


def _target(m: StoredMessage) -> str:
    return channel(m.room) if m.room is not None else (m.to or "")


def _file_text(file: StoredFile) -> str:
    """A shared file as IRC shows it: IRC has no way to fetch it, so say where."""
    return f"[file] {file.name} ({file.size:,} bytes; open it in the chatsecure client)"


def message_lines(
    m: StoredMessage,
    caps: frozenset[str],
    *,
    command: str = "PRIVMSG",
    batch: str | None = None,
) -> list[Message]:
    """A stored message as the lines one reader with ``caps`` gets; none once deleted."""
    if m.deleted:
        return []
    target = _target(m)
    source = user_source(m.sender)
    tags: dict[str, str] = {}
    if batch is not None:
        tags["batch"] = batch
    if SERVER_TIME in caps:
        tags["time"] = format_ts(m.ts_ms)
    if ACCOUNT_TAG in caps:
        tags["account"] = m.sender
    text = m.text if m.file is None else _file_text(m.file)
    action = text.startswith(ACTION_PREFIX) and "\n" not in text
    if action:
        text = text[len(ACTION_PREFIX) :]
    wrapper = len(_CTCP_ACTION[0]) + len(_CTCP_ACTION[1]) if action else 0
    lines = split_lines(text, _budget(source, command, target, wrapper))
    if MESSAGE_TAGS in caps:
        tags["msgid"] = str(m.id)  # one message, one id: on its first line or its batch
    if MULTILINE in caps and not action and sum(map(len, lines)) > 1:
        return _multiline(m, command, tags, lines)
    start, end = _CTCP_ACTION if action else ("", "")
    pieces = [f"{start}{piece}{end}" for line in lines for piece in line]
    later = {k: v for k, v in tags.items() if k != "msgid"}
    return [
        Message(command, (target, piece), source, later if i else tags)
        for i, piece in enumerate(pieces)
    ]


def _multiline(
    m: StoredMessage, command: str, tags: dict[str, str], lines: list[list[str]]
) -> list[Message]:
    """One message in a ``draft/multiline`` batch: the pieces of a long line are joined
    again by the reader (``draft/multiline-concat``); the batch carries the tags."""
    ref, target, source = f"ml{m.id}", _target(m), user_source(m.sender)
    inner = [
        Message(
            command,
            (target, piece),
            source,
            {"batch": ref, **({MULTILINE_CONCAT: ""} if i else {})},
        )
        for line in lines
        for i, piece in enumerate(line)
    ]
    outer = {"batch": tags["batch"]} if "batch" in tags else {}
    return [
        Message("BATCH", (f"+{ref}", MULTILINE, target), source, tags),
        *inner,
        Message("BATCH", (f"-{ref}",), source, outer),
    ]


def member_line(change: MemberChange) -> Message:
    """A member joined or left a room: their JOIN or PART, as everyone in it sees it."""
    command = "JOIN" if change.joined else "PART"
    return Message(command, (channel(change.room),), user_source(change.user))


def batch_lines(ref: str, kind: str, params: Sequence[str], inner: list[Message]) -> list[Message]:
    return [
        Message("BATCH", (f"+{ref}", kind, *params), SERVER_NAME),
        *inner,
        Message("BATCH", (f"-{ref}",), SERVER_NAME),
    ]


def history_lines(
    page: HistoryPage, caps: frozenset[str], ref: str | None, *, even_empty: bool = False
) -> list[Message]:
    """A page of history: in a ``chathistory`` batch for readers of batches (``ref``).
    An empty page is nothing, unless ``even_empty`` (CHATHISTORY answers with a batch)."""
    lines = [line for m in page.messages for line in message_lines(m, caps, batch=ref)]
    if ref is None or not (lines or even_empty):
        return lines
    return batch_lines(ref, "chathistory", (conversation_target(page.conversation),), lines)


def targets_lines(found: Activities, ref: str | None) -> list[Message]:
    """``CHATHISTORY TARGETS`` answers: one line per conversation with the time of its
    latest message, in a ``draft/chathistory-targets`` batch for readers of batches."""
    lines = [
        Message("CHATHISTORY", ("TARGETS", conversation_target(c), format_ts(ts)), SERVER_NAME)
        for c, ts in found.conversations
    ]
    return lines if ref is None else batch_lines(ref, "draft/chathistory-targets", (), lines)


def online_names(members: MemberList) -> list[str]:
    return [m.user for m in members.members if m.online]


def names_lines(nick: str, room: str, names: Iterable[str]) -> list[Message]:
    """353 (RPL_NAMREPLY) lines that fit, then 366 (RPL_ENDOFNAMES)."""
    where = channel(room)
    overhead = len(body_bytes(SERVER_NAME, "353", (nick, "=", where, " "))) - 1
    lines = [
        Message("353", (nick, "=", where, chunk), SERVER_NAME)
        for chunk in split_text(" ".join(names), MAX_BODY_BYTES - 2 - overhead)
    ]
    return [*lines, Message("366", (nick, where, "End of /NAMES list"), SERVER_NAME)]


def who_lines(nick: str, mask: str, names: Iterable[str]) -> list[Message]:
    """352 (RPL_WHOREPLY) per online member, then 315 (RPL_ENDOFWHO)."""
    lines = [
        Message(
            "352",
            (nick, mask, name, SERVER_NAME, SERVER_NAME, name, "H", f"0 {name}"),
            SERVER_NAME,
        )
        for name in names
    ]
    return [*lines, Message("315", (nick, mask, "End of /WHO list"), SERVER_NAME)]


def isupport_tokens(history_limit: int, max_targets: int) -> list[str]:
    """What 005 (RPL_ISUPPORT) says: rooms are ``#`` channels without modes or prefixes,
    names are compared in ASCII, text is UTF-8 only, and history is read by message id
    (preferred: ids order messages exactly) or by time."""
    return [
        "CASEMAPPING=ascii",
        "CHANLIMIT=#:",
        "CHANMODES=,,,",
        "CHANNELLEN=33",
        "CHANTYPES=#",
        f"CHATHISTORY={history_limit}",
        "LINELEN=512",
        "MSGREFTYPES=msgid,timestamp",
        "NETWORK=chatsecure",
        "NICKLEN=32",
        "PREFIX=",
        f"TOPICLEN={TOPIC_MAX_CHARS}",
        f"TARGMAX=JOIN:,PART:,NAMES:,WHO:,PRIVMSG:{max_targets},NOTICE:{max_targets}",
        "USERLEN=32",
        "UTF8ONLY",
    ]


MOTD = (
    "Welcome to chatsecure over IRC.",
    "Your nick is your account name; each #channel is a chatsecure room.",
    "Joining and parting are remembered: a room you part is left for all your clients.",
    "Messages are stored before anyone sees them; history is replayed when you join.",
)


def motd_lines(nick: str) -> list[Message]:
    return [
        Message("375", (nick, f"- {SERVER_NAME} Message of the day -"), SERVER_NAME),
        *(Message("372", (nick, f"- {line}"), SERVER_NAME) for line in MOTD),
        Message("376", (nick, "End of /MOTD command"), SERVER_NAME),
    ]
