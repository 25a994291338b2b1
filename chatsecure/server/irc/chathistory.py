"""``CHATHISTORY`` requests (IRCv3 ``draft/chathistory``), judged once: pure, no state.

A request's parameters become a typed query the session maps onto the service's history
calls, or an ``Invalid`` carrying the standard reply (``FAIL CHATHISTORY ...``) that says
what is wrong. References are ``msgid=`` (a chatsecure message id) or ``timestamp=``
(server-time's format), and ``*`` for ``LATEST``; ``TARGETS`` takes timestamps only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatsecure.server.core.results import Conversation
from chatsecure.server.irc.replies import conversation_of
from chatsecure.storage.store import At, Bound
from chatsecure.timestamps import parse_date

MAX_LIMIT = 500  # messages (or targets) one request may ask for: CHATHISTORY= in 005

# Subcommand -> how many parameters it takes, itself included.
ARITY = {"LATEST": 4, "BEFORE": 4, "AFTER": 4, "AROUND": 4, "BETWEEN": 5, "TARGETS": 4}


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Messages of one conversation. ``first`` is None only for ``LATEST *``;
    ``second`` is the other end of ``BETWEEN``."""

    sub: str
    target: str
    conversation: Conversation
    first: Bound | None
    second: Bound | None
    limit: int


@dataclass(frozen=True, slots=True)
class TargetsQuery:
    """``TARGETS``: conversations whose latest message is between two moments."""

    first_ms: int
    second_ms: int
    limit: int


@dataclass(frozen=True, slots=True)
class Invalid:
    """A request we will not run: the ``FAIL CHATHISTORY`` code and its parameters."""

    code: str
    params: tuple[str, ...]


Query = HistoryQuery | TargetsQuery | Invalid


class _Refused(Exception):
    def __init__(self, code: str, *params: str) -> None:
        super().__init__(code)
        self.invalid = Invalid(code, params)


def parse_chathistory(params: Sequence[str]) -> Query:
    """The query ``CHATHISTORY <params>`` asks for."""
    sub = params[0].upper()
    try:
        return _parse(sub, params)
    except _Refused as refused:
        return refused.invalid


def _parse(sub: str, params: Sequence[str]) -> HistoryQuery | TargetsQuery:
    arity = ARITY.get(sub)
    if arity is None:
        raise _Refused("INVALID_PARAMS", params[0], "Unknown subcommand")
    if len(params) != arity:
        few = len(params) < arity
        raise _Refused(
            "INVALID_PARAMS", sub, "Insufficient parameters" if few else "Too many parameters"
        )
    limit = _limit(sub, params[-1])
    if sub == "TARGETS":
        since, until = (_timestamp(sub, p).ts_ms for p in params[1:3])
        return TargetsQuery(since, until, limit)
    target = params[1]
    conversation = conversation_of(target)
    if conversation is None:
        raise _Refused("INVALID_TARGET", sub, target, "Messages could not be retrieved")
    if sub == "LATEST" and params[2] == "*":
        return HistoryQuery(sub, target, conversation, None, None, limit)
    first = _reference(sub, target, params[2])
    second = _reference(sub, target, params[3]) if sub == "BETWEEN" else None
    return HistoryQuery(sub, target, conversation, first, second, limit)


def _limit(sub: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise _Refused("INVALID_PARAMS", sub, text, "The limit must be a positive number")
    return min(int(text), MAX_LIMIT)


def _reference(sub: str, target: str, text: str) -> Bound:
    kind, equals, value = text.partition("=")
    if kind == "timestamp":
        return _timestamp(sub, text)
    if kind == "msgid" and value.isdigit():
        return int(value)
    if kind == "msgid" or not equals:
        raise _Refused("INVALID_PARAMS", sub, text, "Invalid message reference")
    raise _Refused("INVALID_MSGREFTYPE", sub, target, "Only msgid= and timestamp= are supported")


def _timestamp(sub: str, text: str) -> At:
    kind, _, value = text.partition("=")
    if kind == "timestamp":
        try:
            return At(parse_date(value))
        except ValueError:
            pass
    raise _Refused("INVALID_PARAMS", sub, text, "Invalid timestamp")
