"""Assertions shared by the end-to-end tests, phrased as the contract phrases them."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.e2e.client import ChatClient, Frame

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def assert_error(reply: Frame, code: str, req: Any = None) -> Frame:
    """``reply`` is an ``error`` with ``code``, a human-readable message, and ``req``."""
    assert reply["type"] == "error", reply
    assert reply["code"] == code, reply
    assert isinstance(reply["message"], str), reply
    assert reply["message"], reply
    if req is not None:
        assert reply["req"] == req, reply
    return reply


def assert_ok_send(reply: Frame) -> int:
    """An ``ok`` for a ``send``: a positive integer ``id`` and an RFC 3339 ``ts``."""
    assert reply["type"] == "ok", reply
    assert isinstance(reply["id"], int), reply
    assert reply["id"] > 0, reply
    assert TIMESTAMP.fullmatch(reply["ts"]), reply
    return int(reply["id"])


def send_room(client: ChatClient, room: str, text: str) -> int:
    """Send ``text`` to ``room`` and return the stored id from the ``ok``."""
    return assert_ok_send(client.request({"type": "send", "room": room, "text": text}))


def send_direct(client: ChatClient, to: str, text: str) -> int:
    return assert_ok_send(client.request({"type": "send", "to": to, "text": text}))


def timed_login(client: ChatClient, username: str, password: str) -> tuple[Frame, float]:
    """A ``login`` request's reply and how long it took in seconds."""
    started = time.perf_counter()
    reply = client.request({"type": "login", "username": username, "password": password})
    return reply, time.perf_counter() - started


def join(client: ChatClient, room: str) -> list[Frame]:
    """Join ``room``; returns ``[joined, history, who]`` as the contract orders them."""
    joined = client.request({"type": "join", "room": room})
    assert joined["type"] == "joined", joined
    history = client.expect("history", room=joined["room"])
    who = client.expect("who", room=joined["room"])
    return [joined, history, who]


def settle(watcher: ChatClient, who: Frame, user: str) -> None:
    """Take the offline presence of ``user`` that a ``who`` showing them online promises.

    ``who`` and presence are consistent: if ``who`` still showed ``user`` online, their
    last session's end is announced to ``watcher`` after it; if not, it never will be.
    """
    if any(m["user"] == user and m["online"] for m in who["members"]):
        watcher.expect("presence", user=user, status="offline")


def texts(frames: list[Frame]) -> list[str]:
    return [f["text"] for f in frames]


def history(client: ChatClient, **fields: Any) -> Frame:
    reply = client.request({"type": "history", **fields})
    assert reply["type"] == "history", reply
    return reply
