"""The throttle's bookkeeping and the fair bcrypt pool, without a server or a clock."""

from __future__ import annotations

import threading

from chatsecure.server.core.auth import FairPool
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


def test_the_pool_takes_turns_between_owners_instead_of_first_come() -> None:
    pool = FairPool(1, initializer=lambda: None)
    ran: list[str] = []
    gate = threading.Event()
    started = threading.Event()

    def job(label: str) -> str:
        ran.append(label)
        started.set()
        gate.wait(5)
        return label

    futures = [pool.submit(("busy",), job, "busy-0")]
    assert started.wait(5)  # the one worker is running busy-0
    futures += [pool.submit(("busy",), job, f"busy-{n}") for n in range(1, 4)]
    futures += [
        pool.submit(("other", "busy"), job, "shared"),
        pool.submit(("other",), job, "other"),
    ]
    gate.set()
    assert {f.result(5) for f in futures} == set(ran)
    # "other" had started nothing, so it came before busy's queue; "shared" has busy as
    # an owner too and waits its turn among busy's jobs, in the order they came.
    assert ran == ["busy-0", "other", "busy-1", "busy-2", "busy-3", "shared"]
    pool.close()


def test_a_closed_pool_cancels_what_waits() -> None:
    pool = FairPool(1, initializer=lambda: None)
    gate, started = threading.Event(), threading.Event()

    def hold() -> bool:
        started.set()
        return gate.wait(5)

    running = pool.submit(("a",), hold)
    assert started.wait(5)
    waiting = pool.submit(("a",), lambda: "never")
    pool.close()
    gate.set()
    assert running.result(5) is True
    assert waiting.cancelled()
