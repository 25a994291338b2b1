"""The search scenario: the newest matches of a common word among many stored messages.

It times ``Store.search`` in-process (what a search request costs the server, less the
frame), on a SQLite database filled through the store's batch insert, so the index is
built by the same triggers that keep it in a running server. Messages are made of words
drawn from a fixed vocabulary; ``COMMON`` is in one message in ten, the reader is in
half of the rooms, so about one message in twenty is a match it may read.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.store import MAX_BATCH, NewMessage, Store

COMMON = "deploy"
COMMON_SHARE = 0.1
PHRASE = ("friday", "release")  # together in one message in a hundred
ROOMS = 40
READER_ROOMS = 20
VOCABULARY = 5000
FILL_BATCH = 10 * MAX_BATCH  # messages per transaction while filling
WRITE_COST_MESSAGES = 20_000  # messages stored with and without the index to compare


def _words(seed: int) -> list[str]:
    """``VOCABULARY`` made-up words, none of them the common word or the phrase's."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pu", "gra", "sto"]
    words = {"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(VOCABULARY * 2)}
    return sorted(words - {COMMON, *PHRASE})[:VOCABULARY]


def texts(count: int, seed: int = 17) -> Iterator[str]:
    """``count`` message texts of 6 to 16 words, the same ones for the same seed."""
    rng = random.Random(seed)
    vocabulary = _words(seed)
    for _ in range(count):
        words = rng.choices(vocabulary, k=rng.randint(6, 16))
        if rng.random() < COMMON_SHARE:
            words[rng.randrange(len(words))] = COMMON
        if rng.random() < 0.01:
            at = rng.randrange(len(words))
            words[at : at + 1] = list(PHRASE)
        yield " ".join(words)


def fill(store: Store, count: int) -> float:
    """Store ``count`` messages round-robin over the rooms; messages per second."""
    writer = store.get_account("writer")
    assert writer is not None
    rooms = [(store.room_id(f"s{i}"), f"s{i}") for i in range(ROOMS)]
    t = time.monotonic()
    batch: list[NewMessage] = []
    for n, body in enumerate(texts(count)):
        room_id, room = rooms[n % ROOMS]
        batch.append(NewMessage(writer.id, writer.name, body, room_id=room_id, room_name=room))
        if len(batch) == FILL_BATCH:
            store.insert_messages(batch)
            batch = []
    store.insert_messages(batch)
    return count / (time.monotonic() - t)


def _new_store(folder: Path, revision: str = "head", url: str | None = None) -> Store:
    """A store with the writer in every room and the reader in half: on a SQLite file in
    ``folder``, or on the (empty) database at ``url``."""
    if url is None:
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'chat.db'}"
    engine = make_engine(url)
    upgrade(engine, revision)
    store = Store(engine)
    store.create_accounts([("writer", "-")], [f"s{i}" for i in range(ROOMS)])
    store.create_accounts([("reader", "-")], [f"s{i}" for i in range(READER_ROOMS)])
    return store


def _timings(call: Callable[[], object], times: int) -> tuple[float, float]:
    """Median and p99 of ``times`` calls, in ms."""
    taken = []
    for _ in range(times):
        t = time.perf_counter()
        call()
        taken.append(1000 * (time.perf_counter() - t))
    taken.sort()
    return statistics.median(taken), taken[min(len(taken) - 1, int(0.99 * len(taken)))]


def _sizes(store: Store) -> tuple[int, int]:
    """Bytes the FTS5 index (its table and shadow tables) and the whole database take."""
    with store.engine.connect() as conn:
        index = conn.execute(
            text("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'messages_fts%'")
        ).scalar_one()
        pages = conn.execute(text("PRAGMA page_count")).scalar_one()
        page = conn.execute(text("PRAGMA page_size")).scalar_one()
    return int(index or 0), int(pages) * int(page)


def write_cost(work: Path, count: int) -> float:
    """How much slower the batch insert stores messages with the index than without."""
    rates = []
    for revision in ("0005", "head"):
        store = _new_store(work / f"write-{revision}", revision)
        rates.append(fill(store, count))
        store.close()
    return rates[0] / rates[1]


def _time_queries(store: Store, queries: int, say: Callable[[str], None]) -> dict[str, float]:
    """Median and p99 of each kind of search the reader makes, in ms."""
    reader = store.get_account("reader")
    assert reader is not None
    found, more = store.search(reader.id, COMMON)
    assert len(found) == 20, "the common word must fill a page"
    assert more, "the common word must fill more than a page"
    middle = found[0].id // 2  # a page from halfway back in time
    room = store.room_id("s1")
    cases: dict[str, Callable[[], object]] = {
        "newest": lambda: store.search(reader.id, COMMON),
        "paged": lambda: store.search(reader.id, COMMON, before=middle),
        "room": lambda: store.search(reader.id, COMMON, room_id=room),
        "phrase": lambda: store.search(reader.id, f'{COMMON} "{" ".join(PHRASE)}"'),
    }
    figures = {}
    for name, call in cases.items():
        call()  # warm the page cache
        p50, p99 = _timings(call, queries)
        figures[f"{name}_p50_ms"], figures[f"{name}_p99_ms"] = p50, p99
        say(f"  search {name}: median {p50:.2f} ms, p99 {p99:.2f} ms")
    return figures


def search(work: Path, messages: int, queries: int, say: Callable[[str], None]) -> dict[str, Any]:
    store = _new_store(work / "search")
    rate = fill(store, messages)
    say(f"  {messages:,} messages stored with the index at {rate:,.0f}/s")
    figures: dict[str, Any] = _time_queries(store, queries, say)
    index, database = _sizes(store)
    figures["index_mib_per_million"] = index / 2**20 * 1_000_000 / messages
    figures["index_share_pct"] = 100 * index / database
    figures["messages"] = float(messages)
    figures["fill_per_s"] = rate
    t = time.monotonic()
    store.compact_search_index()  # what a purge or an erasure ends with
    figures["compact_s_per_million"] = (time.monotonic() - t) * 1_000_000 / messages
    store.close()
    figures["write_cost_x"] = write_cost(work, min(messages, WRITE_COST_MESSAGES))
    say(
        f"  index {figures['index_mib_per_million']:.1f} MiB per million messages "
        f"({figures['index_share_pct']:.0f}% of the file); batch inserts "
        f"{figures['write_cost_x']:.2f}x slower with it; compacting it takes "
        f"{figures['compact_s_per_million']:.1f}s per million messages"
    )
    return {key: float(value) for key, value in figures.items()}


def search_postgresql(messages: int, queries: int, say: Callable[[str], None]) -> dict[str, float]:
    """The same searches on a PostgreSQL server the run starts (as the tests do)."""
    from tests.pg import PostgresServer  # noqa: PLC0415 - only this run needs the tests' server

    postgres = PostgresServer()
    postgres.start()
    try:
        store = _new_store(Path(), url=postgres.new_database())
        rate = fill(store, messages)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE messages")
        say(f"  {messages:,} messages stored with the index at {rate:,.0f}/s (PostgreSQL)")
        figures = _time_queries(store, queries, say)
        with store.engine.connect() as conn:
            index = conn.execute(text("SELECT pg_relation_size('ix_messages_search')")).scalar_one()
            words = conn.execute(
                text("SELECT SUM(pg_column_size(search_vector)) FROM messages")
            ).scalar_one()
        figures["index_mib_per_million"] = index / 2**20 * 1_000_000 / messages
        figures["words_column_mib_per_million"] = words / 2**20 * 1_000_000 / messages
        say(
            f"  index {figures['index_mib_per_million']:.1f} MiB per million messages, "
            f"and the column of words it is over {figures['words_column_mib_per_million']:.1f}"
        )
        store.close()
        return figures
    finally:
        postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search",
        description="The search scenario alone, on SQLite or PostgreSQL, printed.",
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--postgresql", action="store_true", help="on a PostgreSQL server")
    args = parser.parse_args()

    def say(line: str) -> None:
        print(line, flush=True)

    if args.postgresql:
        figures = search_postgresql(args.messages, args.queries, say)
    else:
        with tempfile.TemporaryDirectory(prefix="chatsecure-bench-search-") as folder:
            figures = search(Path(folder), args.messages, args.queries, say)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
