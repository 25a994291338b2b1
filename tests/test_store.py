from datetime import timedelta

import pytest
from sqlalchemy import event, update

from chatsecure.storage import store as store_module
from chatsecure.storage.db import make_engine
from chatsecure.storage.models import AddressFailure
from chatsecure.storage.store import (
    Activity,
    At,
    NameTakenError,
    NewMessage,
    NoSuchAccountError,
    NoSuchRoomError,
    Store,
    message_from_row,
)


@pytest.fixture
def people(store: Store) -> dict[str, int]:
    store.create_accounts([("Alice", "h1"), ("bob", "h2"), ("carol", "h3")], ["general"])
    return {a.name: a.id for a in store.list_accounts()}


def _room(
    store: Store, n: int, room: str = "general", sender: str = "Alice", ids=None
) -> list[int]:
    ids = ids or {a.name: a.id for a in store.list_accounts()}
    room_id = store.room_id(room)
    assert room_id is not None
    batch = [
        NewMessage(ids[sender], sender, f"m{i}", room_id=room_id, room_name=room) for i in range(n)
    ]
    return [m.id for m in store.insert_messages(batch)]


def _dm(store: Store, sender: str, recipient: str, text: str) -> int:
    ids = {a.name: a.id for a in store.list_accounts()}
    message = NewMessage(
        ids[sender], sender, text, recipient_id=ids[recipient], recipient_name=recipient
    )
    return store.insert_messages([message])[0].id


def test_names_are_case_insensitive_and_keep_their_spelling(store, people):
    account = store.get_account("ALICE")
    assert account is not None
    assert account.name == "Alice"
    with pytest.raises(NameTakenError, match="Alice"):
        store.create_account("alice", "h", [])
    with pytest.raises(NameTakenError, match="more than once"):
        store.create_accounts([("dave", "h"), ("DAVE", "h")], [])


def test_create_accounts_is_all_or_nothing(store, people):
    with pytest.raises(NameTakenError):
        store.create_accounts([("dave", "h"), ("erin", "h"), ("bob", "h")], [])
    assert store.get_account("dave") is None


def test_new_accounts_join_the_default_rooms(store, people):
    rooms = store.list_rooms(people["bob"])
    assert [(r.name, r.members, r.joined) for r in rooms] == [("general", 3, True)]


def test_password_disable_and_missing_accounts(store, people):
    assert store.set_password("BOB", "new-hash") == 1
    store.set_disabled("bob", True)
    bob = store.get_account("bob")
    assert bob is not None
    assert bob.password_hash == "new-hash"
    assert bob.disabled
    assert bob.credential_generation == 1
    assert store.credential_generations([people["bob"], people["carol"]]) == {people["carol"]: 0}
    with pytest.raises(NoSuchAccountError):
        store.set_disabled("nobody", True)


def test_a_rehash_keeps_the_generation_and_never_undoes_a_change(store, people):
    carol = store.get_account("carol")
    assert carol is not None
    store.rehash_password(people["carol"], carol.password_hash, "stronger-hash")
    assert store.credential_generations([people["carol"]]) == {people["carol"]: 0}
    store.set_password("carol", "changed-hash")
    store.rehash_password(people["carol"], "stronger-hash", "late-rehash")
    carol = store.get_account("carol")
    assert carol is not None
    assert (carol.password_hash, carol.credential_generation) == ("changed-hash", 1)


def test_rooms(store, people):
    store.create_room("dev")
    with pytest.raises(NameTakenError):
        store.create_room("dev")
    assert store.join_room(people["bob"], "dev", create=False)[1] is True
    assert store.join_room(people["bob"], "dev", create=False)[1] is False
    with pytest.raises(NoSuchRoomError):
        store.join_room(people["bob"], "nowhere", create=False)
    snapshot = store.login_snapshot(people["bob"], history=0, peers=0)
    assert [name for _, name in snapshot.rooms] == ["dev", "general"]


def test_history_latest_before_and_after_with_more(store, people):
    ids = _room(store, 10)
    latest = store.room_history(store.room_id("general"), limit=4)
    assert [m.id for m in latest.messages] == ids[-4:]
    assert latest.more
    older = store.room_history(store.room_id("general"), before=ids[-4], limit=4)
    assert [m.id for m in older.messages] == ids[2:6]
    assert older.more
    oldest = store.room_history(store.room_id("general"), before=ids[2], limit=4)
    assert [m.id for m in oldest.messages] == ids[:2]
    assert not oldest.more
    newer = store.room_history(store.room_id("general"), after=ids[0], limit=4)
    assert [m.id for m in newer.messages] == ids[1:5]
    assert newer.more
    newest = store.room_history(store.room_id("general"), after=ids[6], limit=4)
    assert [m.id for m in newest.messages] == ids[7:]
    assert not newest.more
    assert newest.messages[0].room == "general"
    assert newest.messages[0].sender == "Alice"


def _at_times(monkeypatch, store: Store, times: list[int], insert) -> list[int]:
    """Ids of messages stored one by one by ``insert()``, each at the next of ``times``."""
    ids = []
    for ms in times:
        monkeypatch.setattr(store_module, "now_ms", lambda ms=ms: ms)
        ids.append(insert())
    return ids


def test_history_bounds_by_time_both_bounds_and_the_newest_of_a_range(store, people, monkeypatch):
    room = store.room_id("general")
    assert room is not None
    ids = _at_times(monkeypatch, store, [1000, 2000, 2000, 3000, 4000], lambda: _room(store, 1)[0])
    assert [m.id for m in store.room_history(room, before=At(3000)).messages] == ids[:3]
    assert [m.id for m in store.room_history(room, after=At(2000)).messages] == ids[3:]
    between = store.room_history(room, after=ids[0], before=ids[4], limit=2)
    assert [m.id for m in between.messages] == ids[1:3]
    assert between.more
    newest = store.room_history(room, after=ids[0], before=ids[4], limit=2, newest=True)
    assert [m.id for m in newest.messages] == ids[2:4]
    mixed = store.room_history(room, after=At(1000), before=ids[3], limit=10)
    assert [m.id for m in mixed.messages] == ids[1:3]


def test_activity_lists_rooms_and_direct_chats_by_their_latest_message(store, people, monkeypatch):
    store.join_room(people["Alice"], "dev", create=True)
    store.create_room("elsewhere")  # not Alice's: never listed
    dev = lambda: _room(store, 1, room="dev")[0]  # noqa: E731
    general = lambda: _room(store, 1)[0]  # noqa: E731
    _at_times(monkeypatch, store, [1000, 5000], general)
    _at_times(monkeypatch, store, [2000], dev)
    _at_times(monkeypatch, store, [3000], lambda: _dm(store, "bob", "Alice", "hi"))
    _at_times(monkeypatch, store, [4000], lambda: _dm(store, "Alice", "carol", "yo"))
    every = store.activity(people["Alice"], after_ms=0, before_ms=10_000, limit=10, newest=False)
    assert every == [
        Activity("dev", None, 2000),
        Activity(None, "bob", 3000),
        Activity(None, "carol", 4000),
        Activity("general", None, 5000),
    ]
    # general's latest message is outside the window: its earlier one does not count.
    window = store.activity(people["Alice"], after_ms=2000, before_ms=5000, limit=10, newest=False)
    assert window == every[1:3]
    oldest = store.activity(people["Alice"], after_ms=0, before_ms=10_000, limit=2, newest=False)
    assert oldest == every[:2]
    newest = store.activity(people["Alice"], after_ms=0, before_ms=10_000, limit=2, newest=True)
    assert newest == every[2:]


def test_login_snapshot_pages_match_room_history_per_room(store, people):
    store.create_room("dev")
    store.create_room("empty")
    for room in ("dev", "empty"):
        store.join_room(people["Alice"], room, create=False)
    _room(store, 7)
    _room(store, 3, room="dev", sender="bob")
    _room(store, 2)
    rooms = [store.room_id(name) for name in ("general", "dev", "empty")]
    pages = store.login_snapshot(people["Alice"], history=4, peers=0).room_pages
    for room_id in rooms:
        assert pages[room_id] == store.room_history(room_id, limit=4)
    assert len(pages[rooms[0]].messages) == 4
    assert pages[rooms[0]].more
    assert not pages[rooms[1]].more
    assert pages[rooms[2]].messages == []


def test_login_snapshot_members_match_room_members_per_room(store, people):
    store.create_room("dev")
    dev = store.room_id("dev")
    store.join_room(people["carol"], "dev", create=False)
    store.join_room(people["Alice"], "dev", create=False)
    rooms = [store.room_id("general"), dev]
    members = store.login_snapshot(people["Alice"], history=0, peers=0).members
    for room_id in rooms:
        assert members[room_id] == store.room_members(room_id)
    assert [m.name for m in members[dev]] == ["Alice", "carol"]
    store.leave_room(people["bob"], rooms[0])
    lonely = store.login_snapshot(people["bob"], history=0, peers=0)
    assert (lonely.rooms, lonely.members) == ([], {})


def test_batches_take_consecutive_ids_even_with_another_writer(store, people):
    # Another process (an admin tool, a second server by mistake) writing the same
    # database between batches must neither collide nor be overtaken. On SQLite 256 and
    # 2 are one statement each; 300 and 5 take several in one transaction.
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))
    sizes = [(store, 256), (other, 5), (store, 300), (other, 2)]
    got = [_room(writer, n) for writer, n in sizes]
    expected, start = [], 1
    for _, n in sizes:
        expected.append(list(range(start, start + n)))
        start += n
    assert got == expected
    page = store.room_history(store.room_id("general"), after=0, limit=500)
    history = (
        page.messages
        + store.room_history(
            store.room_id("general"), after=page.messages[-1].id, limit=500
        ).messages
    )
    assert [m.id for m in history] == list(range(1, start))
    assert [m.text for m in history] == [f"m{i}" for _, n in sizes for i in range(n)]


def test_a_batch_of_room_messages_is_one_insert(store, people):
    # On SQLite no BEGIN or COMMIT around it: each statement costs the message writer a
    # GIL wait. On PostgreSQL the room's row lock comes first, so ids commit in order.
    room_id = store.room_id("general")
    size = Store.one_statement_batch(300)
    batch = [NewMessage(people["bob"], "bob", "hi", room_id=room_id) for _ in range(size)]
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert [m.id for m in store.insert_messages(batch)] == list(range(1, size + 1))
    if store.engine.dialect.name == "sqlite":
        assert len(statements) == 1
    else:
        assert len(statements) == 2
        assert statements[0].endswith("FOR NO KEY UPDATE")
    assert statements[-1].startswith("INSERT INTO messages")


def test_direct_messages_pair_both_ways(store, people):
    first = _dm(store, "Alice", "bob", "hi bob")
    second = _dm(store, "bob", "Alice", "hi alice")
    _dm(store, "Alice", "carol", "hi carol")
    page = store.direct_history(people["bob"], people["Alice"])
    assert [(m.id, m.sender, m.to) for m in page.messages] == [
        (first, "Alice", "bob"),
        (second, "bob", "Alice"),
    ]
    assert not page.more


def _peers(store: Store, account_id: int, limit: int) -> list[str]:
    return [name for name, _ in store.login_snapshot(account_id, 10, limit).peers]


def test_recent_peers_most_recent_first(store, people):
    _dm(store, "Alice", "bob", "1")
    _dm(store, "carol", "Alice", "2")
    assert _peers(store, people["Alice"], 10) == ["carol", "bob"]
    _dm(store, "bob", "Alice", "3")
    assert _peers(store, people["Alice"], 1) == ["bob"]


def test_login_snapshot_direct_pages_match_direct_history(store, people):
    for n in range(5):
        _dm(store, "Alice", "bob", f"to bob {n}")
    _dm(store, "carol", "Alice", "to Alice")
    peers = dict(store.login_snapshot(people["Alice"], history=3, peers=10).peers)
    assert peers["bob"] == store.direct_history(people["Alice"], people["bob"], limit=3)
    assert peers["bob"].more
    assert peers["carol"] == store.direct_history(people["Alice"], people["carol"], limit=3)


def test_deleting_an_account_keeps_its_messages_but_not_its_conversations(store, people):
    room_ids = _room(store, 2, sender="bob")
    dm = _dm(store, "bob", "Alice", "before deletion")
    deleted = store.delete_account("BOB")
    assert deleted.name == "bob"
    history = store.room_history(store.room_id("general"))
    assert [(m.id, m.sender) for m in history.messages] == [(i, "bob") for i in room_ids]
    assert [m.id for m in store.direct_history(people["Alice"], people["bob"]).messages] == [dm]
    assert store.list_rooms()[0].members == 2
    store.create_account("bob", "h", [])
    new_bob = store.get_account("bob")
    assert new_bob is not None
    assert new_bob.id != people["bob"]
    assert store.direct_history(people["Alice"], new_bob.id).messages == []
    with pytest.raises(NoSuchAccountError):
        store.delete_account("nobody")


def test_iter_message_rows_what_an_account_sees(store, people):
    store.create_room("secret")
    secret_id = store.room_id("secret")
    _room(store, 1, room="general")
    store.join_room(people["carol"], "secret", create=False)
    _room(store, 1, room="secret", sender="carol")
    _dm(store, "Alice", "bob", "to bob")
    _dm(store, "carol", "bob", "carol to bob")
    seen_by_alice = [row[3] for row in store.iter_message_rows(visible_to=people["Alice"])]
    assert seen_by_alice == ["m0", "to bob"]
    seen_by_bob = [row[3] for row in store.iter_message_rows(visible_to=people["bob"])]
    assert seen_by_bob == ["m0", "to bob", "carol to bob"]
    in_secret = [message_from_row(row) for row in store.iter_message_rows(room_id=secret_id)]
    assert [(m.sender, m.room, m.text) for m in in_secret] == [("carol", "secret", "m0")]


def test_iter_message_rows_time_window(store, people):
    _room(store, 3)
    rows = list(store.iter_message_rows(room_id=store.room_id("general")))
    ts = rows[0][1]
    assert list(store.iter_message_rows(since_ms=ts + 1)) == []
    assert len(list(store.iter_message_rows(since_ms=ts, until_ms=ts + 1))) == 3
    assert list(store.iter_message_rows(until_ms=ts)) == []


def _age_address_failures(store: Store, seconds: int) -> None:
    """Move every stored address failure's window start ``seconds`` into the past."""
    with store.writing() as s, s.begin():
        s.execute(
            update(AddressFailure).values(since=AddressFailure.since - timedelta(seconds=seconds))
        )


def test_address_failures_count_in_a_window_and_ended_ones_are_pruned(store):
    assert store.address_failures("192.0.2.1") == (0, None)
    assert [store.record_address_failure("192.0.2.1", 60) for _ in range(3)] == [1, 2, 3]
    store.record_address_failure("192.0.2.2", 60)
    count, since = store.address_failures("192.0.2.1")
    assert count == 3
    assert since is not None
    assert store.prune_address_failures(60) == 0  # both windows are still open
    _age_address_failures(store, 61)
    assert store.record_address_failure("192.0.2.1", 60) == 1  # an ended window starts anew
    assert store.address_failures("192.0.2.1")[1] > since
    assert store.prune_address_failures(60, batch=5) == 1  # only 192.0.2.2's had ended
    assert store.address_failures("192.0.2.2") == (0, None)
    assert store.address_failures("192.0.2.1")[0] == 1
