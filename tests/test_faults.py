"""The server's budget of logged tracebacks (review round two, finding 4)."""

from __future__ import annotations

import logging

import pytest

from chatsecure.server.faults import FaultLog


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def fail(faults: FaultLog) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        faults.request_failed("history", "alice")


def test_a_few_tracebacks_a_window_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    faults = FaultLog(per_window=3, window=60.0, clock=clock)
    with caplog.at_level(logging.ERROR, logger="chatsecure.server.faults"):
        for _ in range(300):
            fail(faults)
        assert [r.exc_info is not None for r in caplog.records] == [True] * 3
        clock.now = 60.0
        fail(faults)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[3] == "297 more requests failed (tracebacks not logged)"
    assert messages[4] == "history from alice failed"
    assert caplog.records[4].exc_info is not None
