"""Writers racing on the same rows: every write counts once and none fails, on both databases.

Each race runs ``THREADS`` threads, each with a Store of its own (its own connection
pool, as separate server processes would have), for ``ROUNDS`` rounds that all threads
start together at a barrier, all writing the same rows.
On SQLite the write lock lets one in at a time; on PostgreSQL they really overlap, so
only statements that decide atomically (or row locks) keep the counts right.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from chatsecure.storage.db import make_engine
from chatsecure.storage.store import (
    NewMessage,
    NoSuchAccountError,
    RoomCaps,
    Store,
    StoreError,
)

THREADS = 8
ROUNDS = 10
RACE_TIMEOUT = 120.0
T = TypeVar("T")


@pytest.fixture
def stores(store: Store) -> Iterator[list[Store]]:
    """``THREADS`` stores over ``store``'s database, one per racing thread."""
    url = store.engine.url.render_as_string(hide_password=False)
    racers = [Store(make_engine(url)) for _ in range(THREADS)]
    yield racers
    for racer in racers:
        racer.close()


def race(stores: list[Store], work: Callable[[Store, int, int], T]) -> list[T]:
    """``work(store, thread, round)`` in every thread at once, each round; all results."""
    barrier = threading.Barrier(len(stores))

    def run(thread: int) -> list[T]:
        results = []
        try:
            for round_number in range(ROUNDS):
                barrier.wait(RACE_TIMEOUT)
                results.append(work(stores[thread], thread, round_number))
        except BaseException:
            barrier.abort()  # the other threads stop at once instead of waiting for this one
            raise
        return results

    with ThreadPoolExecutor(len(stores)) as pool:
        futures = [pool.submit(run, thread) for thread in range(len(stores))]
        errors = [future.exception(RACE_TIMEOUT) for future in futures]
    causes = [e for e in errors if e and not isinstance(e, threading.BrokenBarrierError)]
    if causes:
        raise causes[0]
    return [result for future in futures for result in future.result()]


def refused(action: Callable[[], object]) -> str | None:
    """None if ``action`` succeeded, else the class name of the StoreError it raised."""
    try:
        action()
    except StoreError as exc:
        return type(exc).__name__
    return None


def test_concurrent_login_failures_each_count_once(store, stores):
    store.create_account("target", "h", [])
    account = store.get_account("target")
    assert account is not None
    counts = race(stores, lambda s, _t, _r: s.record_login_failure(account.id, 3600))
    # No lost update: every failure saw the count its own increment made.
    assert sorted(counts) == list(range(1, THREADS * ROUNDS + 1))
    after = store.get_account("target")
    assert after is not None
    assert after.failed_logins == THREADS * ROUNDS


def test_concurrent_failures_from_one_address_each_count_once(store, stores):
    # The first round races to insert the address's row, the others to update it.
    counts = race(stores, lambda s, _t, _r: s.record_address_failure("192.0.2.7", 3600))
    assert sorted(counts) == list(range(1, THREADS * ROUNDS + 1))
    assert store.address_failures("192.0.2.7")[0] == THREADS * ROUNDS


def test_concurrent_joins_of_one_account_join_it_once(store, stores):
    store.create_account("joiner", "h", [])
    account = store.get_account("joiner")
    assert account is not None
    results = race(stores, lambda s, _t, _r: s.join_room(account.id, "lobby", create=True))
    assert len({room_id for room_id, _ in results}) == 1
    assert [newly for _, newly in results].count(True) == 1
    assert [m.name for m in store.room_members(results[0][0])] == ["joiner"]


def test_concurrent_joins_create_a_new_room_once(store, stores):
    store.create_accounts([(f"p{n}", "h") for n in range(THREADS)], [])
    ids = [a.id for a in store.list_accounts()]

    def join_a_new_room(s: Store, thread: int, round_number: int) -> int:
        room_id, newly = s.join_room(ids[thread], f"new{round_number}", create=True)
        assert newly
        return room_id

    results = race(stores, join_a_new_room)
    assert len(set(results)) == ROUNDS
    rooms = store.list_rooms()
    assert sorted(r.name for r in rooms) == sorted(f"new{n}" for n in range(ROUNDS))
    assert {r.members for r in rooms} == {THREADS}


def test_concurrent_creations_never_pass_the_room_caps(store, stores):
    """Review round two, finding 8: the caps are counted under a lock, so no race passes them."""
    store.create_accounts([(f"c{n}", "h") for n in range(THREADS)], [])
    ids = [a.id for a in store.list_accounts()]
    caps = RoomCaps(total=20, per_creator=3)  # 8 creators could make 24

    def create(s: Store, thread: int, round_number: int) -> str | None:
        name = f"r{thread}x{round_number}"
        return refused(lambda: s.join_room(ids[thread], name, create=True, caps=caps))

    outcomes = race(stores, create)
    assert set(outcomes) == {None, "RoomLimitError"}
    assert outcomes.count(None) == 20
    assert len(store.list_rooms()) == 20


def test_concurrent_room_creation_has_one_winner(store, stores):
    outcomes = race(stores, lambda s, _t, _r: refused(lambda: s.create_room("dev")))
    assert outcomes.count(None) == 1
    assert set(outcomes) == {None, "RoomExistsError"}
    assert [r.name for r in store.list_rooms()] == ["dev"]


def test_concurrent_account_creation_has_one_winner_per_name(store, stores):
    def create(s: Store, thread: int, round_number: int) -> str | None:
        # A name of the thread's own and one every thread wants: all or nothing.
        own = f"own{thread}r{round_number}"
        return refused(lambda: s.create_accounts([(own, "h"), ("Shared", "h")], ["welcome"]))

    outcomes = race(stores, create)
    assert outcomes.count(None) == 1
    assert set(outcomes) == {None, "NameTakenError"}
    names = [a.name for a in store.list_accounts()]
    assert len(names) == 2
    assert "Shared" in names
    assert [(r.name, r.members) for r in store.list_rooms()] == [("welcome", 2)]


def test_concurrent_account_creation_makes_the_default_room_once(store, stores):
    def create(s: Store, thread: int, round_number: int) -> None:
        s.create_account(f"n{thread}r{round_number}", "h", ["first", "second"])

    race(stores, create)
    assert [(r.name, r.members) for r in store.list_rooms()] == [
        ("first", THREADS * ROUNDS),
        ("second", THREADS * ROUNDS),
    ]


def test_concurrent_deletions_of_one_account_have_one_winner(store, stores):
    store.create_account("doomed", "h", [])
    outcomes = race(stores, lambda s, _t, _r: refused(lambda: s.delete_account("doomed")))
    assert outcomes.count(None) == 1
    assert set(outcomes) == {None, NoSuchAccountError.__name__}
    assert store.get_account("doomed") is None


def test_concurrent_first_direct_messages_record_the_pair_once(store, stores):
    store.create_accounts([("ann", "h"), ("ben", "h")], [])
    ids = {a.name: a.id for a in store.list_accounts()}

    def send(s: Store, thread: int, _round: int) -> int:
        sender, recipient = ("ann", "ben") if thread % 2 else ("ben", "ann")
        message = NewMessage(
            ids[sender], sender, "hi", recipient_id=ids[recipient], recipient_name=recipient
        )
        return s.insert_messages([message])[0].id

    sent = race(stores, send)
    history = store.direct_history(ids["ann"], ids["ben"], limit=THREADS * ROUNDS)
    assert sorted(m.id for m in history.messages) == sorted(sent)
    for name in ("ann", "ben"):
        peers = store.login_snapshot(ids[name], history=1, peers=5).peers
        assert [(peer, page.messages[-1].id) for peer, page in peers] == [
            ("ben" if name == "ann" else "ann", max(sent))
        ]


def test_a_reader_following_a_room_misses_nothing_while_writers_race(store, stores):
    """Ids in a room commit in id order: a reader that asks only for ids after the last
    one it saw (as a catching-up server node does) still gets every message."""
    store.create_accounts([(f"w{n}", "h") for n in range(THREADS)], ["busy"])
    ids = {a.name: a.id for a in store.list_accounts()}
    room_id = store.room_id("busy")
    assert room_id is not None
    batch_size = 20  # not a one-statement size: every batch is a transaction on both
    total = THREADS * ROUNDS * batch_size
    seen: list[int] = []
    done = threading.Event()

    def follow() -> None:
        deadline = time.monotonic() + RACE_TIMEOUT
        while len(seen) < total and time.monotonic() < deadline:
            writers_done = done.is_set()  # before the read, so the read sees all they wrote
            page = store.room_history(room_id, after=seen[-1] if seen else 0, limit=500)
            seen.extend(m.id for m in page.messages)
            if not page.messages and writers_done:
                return

    def write(s: Store, thread: int, _round: int) -> list[int]:
        name = f"w{thread}"
        batch = [NewMessage(ids[name], name, "x", room_id=room_id) for _ in range(batch_size)]
        return [m.id for m in s.insert_messages(batch)]

    reader = threading.Thread(target=follow)
    reader.start()
    try:
        written = race(stores, write)
    finally:
        done.set()
        reader.join(RACE_TIMEOUT)
    all_ids = sorted(i for batch in written for i in batch)
    assert len(all_ids) == total
    assert seen == all_ids
