"""The throttle's bookkeeping, without a server or a clock."""

from __future__ import annotations

from chatsecure.server.core.limits import FailureCounter

WINDOW = 100.0


def test_attempts_in_flight_count_against_the_limit() -> None:
    counter = FailureCounter(limit=3, window=WINDOW)
    attempts = [counter.begin("carol") for _ in range(5)]
    # Each is judged as though every attempt that began before it will fail.
    assert [counter.wait(a, 0.0) for a in attempts] == [0, 0, 0, 1, 1]
    assert not any(a.alone for a in attempts)
    counter.end(attempts[4], 0.0, failed=False)  # withdrawn: counts nothing
    counter.end(attempts[3], 0.0, failed=False)
    for attempt in attempts[:3]:
        counter.end(attempt, 1.0, failed=True)
    late = counter.begin("carol")
    assert counter.wait(late, 2.0) == 99  # locked for the rest of the window
    assert counter.wait(late, 1.0 + WINDOW) == 0  # which ends
    counter.end(late, 1.0 + WINDOW, failed=False)


def test_failures_kept_elsewhere_add_to_those_in_memory() -> None:
    counter = FailureCounter(limit=3, window=WINDOW)
    first = counter.begin("dave")
    second = counter.begin("dave")
    assert counter.wait(first, 0.0, earlier=1, earlier_wait=50) == 0
    assert counter.wait(second, 0.0, earlier=1, earlier_wait=50) == 0  # 1 stored + 1 ahead
    assert counter.wait(second, 0.0, earlier=2, earlier_wait=50) == 1  # the one ahead decides
    assert counter.wait(first, 0.0, earlier=3, earlier_wait=50) == 50


def test_an_attempt_is_alone_only_if_nothing_overlapped_it() -> None:
    counter = FailureCounter(limit=5, window=WINDOW)
    single = counter.begin("erin")
    counter.end(single, 0.0, failed=False)
    assert single.alone
    first = counter.begin("erin")
    second = counter.begin("erin")  # overlaps the first, which learns of it
    assert (first.alone, second.alone) == (False, False)
    counter.end(first, 0.0, failed=True)
    counter.end(second, 0.0, failed=False)


def test_memory_is_bounded() -> None:
    counter = FailureCounter(limit=1, window=WINDOW, max_keys=2)
    for name in ("a", "b", "c"):
        counter.end(counter.begin(name), 0.0, failed=True)
    # "a" was dropped to make room: it starts afresh, the others stay locked.
    assert [counter.wait(counter.begin(n), 1.0) for n in ("a", "c")] == [0, WINDOW - 1]
