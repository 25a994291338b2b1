"""Cursors: each id delivered once, in order, and never to a session that already saw it."""

from __future__ import annotations

from chatsecure.server.cluster.cursors import Cursors
from chatsecure.server.core.session import Session


def _session(number: int) -> Session:
    return Session(number, "127.0.0.1", outbox=None, now=0.0)  # type: ignore[arg-type]


def test_only_ids_past_the_cursor_are_delivered_once_each():
    cursors: Cursors[str] = Cursors()
    assert cursors.advance("dev", 5) is None  # not followed: nothing to deliver
    cursors.start("dev", 10)
    cursors.start("dev", 3)  # already followed: the cursor stays
    assert cursors.advance("dev", 10) is None
    assert cursors.advance("dev", 12) == set()
    assert cursors.advance("dev", 12) is None  # a repeated read
    assert cursors.advance("dev", 11) is None  # older than what was delivered
    assert cursors.behind("dev", 13)
    assert not cursors.behind("dev", 12)
    assert not cursors.behind("ops", 99)
    assert cursors.snapshot() == {"dev": 12}
    cursors.drop("dev")
    assert "dev" not in cursors


def test_a_session_shown_history_past_the_cursor_skips_up_to_it():
    cursors: Cursors[int] = Cursors()
    old, new = _session(1), _session(2)
    cursors.start(7, 10)
    cursors.showed(7, new, 14)  # its history went up to 14
    cursors.showed(7, old, 9)  # behind the cursor: nothing to skip
    assert cursors.advance(7, 12) == {new}
    assert cursors.advance(7, 14) == {new}
    assert cursors.advance(7, 15) == set()  # past the floor: new gets it too


def test_a_closed_session_leaves_no_floor_behind():
    cursors: Cursors[str] = Cursors()
    gone = _session(3)
    cursors.start("dev", 1)
    cursors.showed("dev", gone, 50)
    cursors.forget(gone)
    assert cursors.advance("dev", 20) == set()
