"""The bus's payloads: what goes in comes out, in order, each under NOTIFY's limit."""

from __future__ import annotations

from chatsecure.server.cluster.news import (
    MAX_PAYLOAD_BYTES,
    Membership,
    News,
    Presence,
    decode,
    encode,
)


def test_news_round_trips_with_hints_coalesced():
    news = News("node1")
    news.hint_room("dev", 4)
    news.hint_room("dev", 9)
    news.hint_room("dev", 7)
    news.hint_direct(3, 8)
    news.events += [Presence(3, True), Membership(3, "Ann", "dev", True), Presence(3, False)]
    news.leaving = True
    (payload,) = encode(news)
    back = decode(payload)
    assert back == News(
        "node1",
        {"dev": 9},
        {3: 8},
        [Presence(3, True), Membership(3, "Ann", "dev", True), Presence(3, False)],
        leaving=True,
    )
    assert not News("node1")


def test_big_news_is_split_in_order_under_the_limit():
    news = News("node2")
    news.events += [Presence(n, n % 2 == 0) for n in range(3000)]
    payloads = encode(news)
    assert len(payloads) > 1
    assert all(
        len(p.encode()) < 8000 and len(p.encode()) <= MAX_PAYLOAD_BYTES + 100 for p in payloads
    )
    events = [e for p in payloads for e in (decode(p) or News("?")).events]
    assert events == news.events


def test_a_foreign_payload_is_ignored():
    assert decode("hello") is None
    assert decode('{"n": "x", "i": [["r"]]}') is None
