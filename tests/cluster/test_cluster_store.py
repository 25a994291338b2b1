"""The cluster's queries on a real PostgreSQL: undelivered messages, heartbeats, presence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from chatsecure.storage.cluster import ClusterStore
from chatsecure.storage.db import make_engine
from chatsecure.storage.store import NewMessage, Store
from tests.pg import PostgresServer


@pytest.fixture
def stores(postgres: PostgresServer) -> Iterator[tuple[Store, ClusterStore]]:
    engine = make_engine(postgres.clean_database())
    store = Store(engine)
    store.create_accounts([("ann", "h"), ("bob", "h"), ("cy", "h")], ["dev", "ops"])
    yield store, ClusterStore(engine)
    engine.dispose()


def _ids(store: Store) -> dict[str, int]:
    return {a.name: a.id for a in store.list_accounts()}


def test_messages_after_each_cursor_in_id_order(stores):
    store, cluster = stores
    who = _ids(store)
    dev, ops = store.room_id("dev"), store.room_id("ops")
    assert dev is not None
    assert ops is not None
    assert cluster.newest_in_rooms([dev, ops]) == {dev: 0, ops: 0}
    room = [
        NewMessage(who["ann"], "ann", f"m{n}", room_id=r, room_name=name)
        for n, (r, name) in enumerate([(dev, "dev"), (ops, "ops")] * 3)
    ]
    stored = store.insert_messages(room)
    direct = store.insert_messages(
        [
            NewMessage(who["ann"], "ann", "to bob", recipient_id=who["bob"], recipient_name="bob"),
            NewMessage(who["cy"], "cy", "to ann", recipient_id=who["ann"], recipient_name="ann"),
        ]
    )
    assert cluster.newest_in_rooms([dev]) == {dev: stored[4].id}
    rows, more = cluster.room_messages_after({dev: stored[0].id, ops: 0})
    assert not more
    assert [(rid, m.id) for rid, m in rows] == [
        (ops, stored[1].id),
        (dev, stored[2].id),
        (ops, stored[3].id),
        (dev, stored[4].id),
        (ops, stored[5].id),
    ]
    assert rows[0][1] == stored[1]
    rows_of_ann, _ = cluster.direct_messages_after({who["ann"]: 0})
    assert [m for _, _, m in rows_of_ann] == direct  # both sides of her pairs
    low, high, _ = rows_of_ann[1]
    assert {low, high} == {who["ann"], who["cy"]}
    assert cluster.direct_messages_after({who["bob"]: direct[0].id}) == ([], False)
    assert cluster.newest_direct(who["ann"]) == direct[1].id
    assert cluster.newest_direct(who["bob"]) == direct[0].id


def test_presence_counts_only_live_nodes(stores):
    store, cluster = stores
    who = _ids(store)
    assert cluster.start_node("n1") is None
    cluster.start_node("n2")
    cluster.set_presence("n1", {who["ann"]: True})
    cluster.set_presence("n1", {who["ann"]: True, 999_999: True})  # repeated, or deleted: fine
    cluster.set_presence("n2", {who["ann"]: True, who["bob"]: True})
    assert cluster.presence(10) == {who["ann"]: {"n1", "n2"}, who["bob"]: {"n2"}}
    assert cluster.presence(10, [who["bob"]]) == {who["bob"]: {"n2"}}
    with store.engine.begin() as conn:  # n2 stopped beating a minute ago
        conn.execute(
            text(
                "UPDATE cluster_nodes SET heartbeat_at = now() - interval '1 minute'"
                " WHERE name = 'n2'"
            )
        )
    assert cluster.live_nodes(10) == {"n1"}
    assert cluster.presence(10) == {who["ann"]: {"n1"}}
    cluster.beat("n2")
    assert cluster.live_nodes(10) == {"n1", "n2"}
    age = cluster.start_node("n2")  # a restart forgets the presence its last run left
    assert age is not None
    assert 0 <= age < 10
    cluster.set_presence("n1", {who["ann"]: False})
    assert cluster.presence(10) == {}
    cluster.set_presence("n1", {who["cy"]: True})
    cluster.stop_node("n1")  # its presence goes with it
    assert cluster.presence(10) == {}
    assert cluster.accounts([who["ann"]]) == {who["ann"]: ("ann", {"dev", "ops"})}


def test_a_cluster_needs_postgresql(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    with pytest.raises(ValueError, match="PostgreSQL"):
        ClusterStore(engine)
    engine.dispose()
