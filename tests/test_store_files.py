"""Files shared in messages (issue 17): stored with their message, read back by every
message read, readable by who may read the conversation, swept with their blobs once no
message shares them; on SQLite and PostgreSQL."""

import hashlib
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from chatsecure.storage.blobs import LocalBlobs, remove_orphans, sweep_unreferenced
from chatsecure.storage.store import NewMessage, Store, StoredFile, new_file_id


@pytest.fixture
def people(store: Store) -> dict[str, int]:
    store.create_accounts([("alice", "h"), ("bob", "h"), ("carol", "h")], [])
    store.create_room("dev", creator_id=None)
    ids = {a.name: a.id for a in store.list_accounts()}
    for name in ("alice", "bob"):
        store.join_room(ids[name], "dev", create=False)
    return ids


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobs:
    return LocalBlobs(tmp_path / "files")


def _upload(blobs: LocalBlobs, data: bytes, name: str = "report.pdf") -> StoredFile:
    partial = blobs.begin()
    partial.append(data)
    blobs.keep(partial)
    then = time.time() - 3600  # long idle: sweeps may take it
    os.utime(blobs.path(partial.sha256()), (then, then))
    return StoredFile(new_file_id(), name, len(data), partial.sha256(), "application/pdf")


def _share(
    store: Store, people: dict[str, int], file: StoredFile, *, sender: str = "alice", to=None
) -> int:
    if to is None:
        message = NewMessage(
            people[sender],
            sender,
            file.name,
            room_id=store.room_id("dev"),
            room_name="dev",
            file=file,
        )
    else:
        message = NewMessage(
            people[sender], sender, file.name, recipient_id=people[to], recipient_name=to, file=file
        )
    return store.insert_messages([message])[0].id


def test_a_file_message_round_trips_through_every_read(store, people, blobs):
    file = _upload(blobs, b"%PDF-1.7 ...")
    plain = NewMessage(people["bob"], "bob", "hi", room_id=store.room_id("dev"), room_name="dev")
    shared = plain._replace(
        sender_id=people["alice"], sender_name="alice", text=file.name, file=file
    )
    stored = store.insert_messages([plain, shared, plain])
    assert [m.file for m in stored] == [None, file, None]
    message_id = stored[1].id
    assert store.message(message_id) == stored[1]
    assert store.message_ref(message_id).message.file == file
    page = store.room_history(store.room_id("dev"))
    assert [m.file for m in page.messages] == [None, file, None]
    snapshot = store.login_snapshot(people["bob"], 10, 10)
    assert [m.file for m in snapshot.room_pages[store.room_id("dev")].messages] == [
        None,
        file,
        None,
    ]
    rows = list(store.iter_message_rows(room_id=store.room_id("dev")))
    assert rows[1][8:] == (file.id, file.name, file.size, file.sha256, file.mime)
    assert rows[0][8:] == (None,) * 5


def test_a_direct_file_message_and_the_login_snapshot(store, people, blobs):
    file = _upload(blobs, b"just for bob")
    _share(store, people, file, to="bob")
    snapshot = store.login_snapshot(people["bob"], 10, 10)
    assert [(peer, [m.file for m in page.messages]) for peer, page in snapshot.peers] == [
        ("alice", [file])
    ]


def test_ordinary_batches_take_no_extra_statement(store, people):
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    batch = [
        NewMessage(people["bob"], "bob", f"m{i}", room_id=store.room_id("dev"), room_name="dev")
        for i in range(4)
    ]
    store.insert_messages(batch)
    assert not any("files" in sql for sql in statements)
    assert not any("file_id" in sql.split("FROM")[0] for sql in statements if "UPDATE" in sql)


def test_a_failed_batch_stores_neither_file_nor_message(store, people, blobs):
    file = _upload(blobs, b"x")
    other = _upload(blobs, b"y")
    _share(store, people, file)
    with pytest.raises(IntegrityError):
        _share(store, people, other._replace(id=file.id))  # a taken id: the batch fails
    assert store.message_count() == 1
    assert store.file_bytes(people["alice"]) == 1


def test_readable_file_follows_who_may_read_the_conversation(store, people, blobs):
    in_room = _upload(blobs, b"room file")
    direct = _upload(blobs, b"direct file")
    room_message = _share(store, people, in_room)
    _share(store, people, direct, to="bob")
    assert store.readable_file(people["bob"], in_room.id) == in_room
    assert store.readable_file(people["carol"], in_room.id) is None  # not a member
    assert store.readable_file(people["alice"], direct.id) == direct
    assert store.readable_file(people["bob"], direct.id) == direct
    assert store.readable_file(people["carol"], direct.id) is None
    assert store.readable_file(people["bob"], "no-such-id") is None
    store.leave_room(people["bob"], store.room_id("dev"))
    assert store.readable_file(people["bob"], in_room.id) is None  # a member now, not then
    store.join_room(people["carol"], "dev", create=False)
    assert store.readable_file(people["carol"], in_room.id) == in_room
    assert store.delete_message(room_message, by="alice", origin="n1")
    assert store.readable_file(people["carol"], in_room.id) is None
    assert store.message(room_message).file is None


def test_file_bytes_counts_the_live_files_an_account_uploaded(store, people, blobs):
    assert store.file_bytes(people["alice"]) == 0
    first = _share(store, people, _upload(blobs, b"12345"))
    _share(store, people, _upload(blobs, b"678"))
    _share(store, people, _upload(blobs, b"bob's"), sender="bob")
    assert store.file_bytes(people["alice"]) == 8
    store.delete_message(first, by="alice", origin="n1")
    assert store.file_bytes(people["alice"]) == 3  # before any sweep
    assert store.file_bytes(people["bob"]) == 5


def _age_messages(store: Store, before_ms: int = 1000) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE messages SET ts_ms = :ts"), {"ts": before_ms - 1})


def test_sweep_after_delete_keeps_a_blob_another_message_shares(store, people, blobs):
    file = _upload(blobs, b"the same bytes")
    again = StoredFile(new_file_id(), "copy.pdf", file.size, file.sha256, file.mime)
    first = _share(store, people, file)
    second = _share(store, people, again, sender="bob")
    assert sweep_unreferenced(store, blobs) == 0
    store.delete_message(first, by="alice", origin="n1")
    assert store.sweep_files() == []  # the row went, but another uses the content
    assert blobs.path(file.sha256).exists()
    assert store.readable_file(people["alice"], again.id) == again
    store.delete_message(second, by="bob", origin="n1")
    assert sweep_unreferenced(store, blobs) == 1
    assert not blobs.path(file.sha256).exists()
    assert store.sweep_files() == []


def test_sweep_after_purge_and_retention(store, people, blobs):
    old = _upload(blobs, b"old")
    _share(store, people, old)
    _age_messages(store)
    new = _upload(blobs, b"new")
    _share(store, people, new)
    while store.purge_messages(1000, batch=1):
        pass
    assert sweep_unreferenced(store, blobs, batch=1) == 1
    assert not blobs.path(old.sha256).exists()
    assert blobs.path(new.sha256).exists()


def test_sweep_after_erase(store, people, blobs):
    erased = _upload(blobs, b"bob's secret")
    bobs_copy_of_alices = _upload(blobs, b"alice's")
    alices = StoredFile(new_file_id(), "a", 7, bobs_copy_of_alices.sha256, "text/plain")
    _share(store, people, erased, sender="bob", to="alice")
    _share(store, people, bobs_copy_of_alices, sender="bob")
    _share(store, people, alices, sender="alice")
    store.delete_account("bob", erase=True)
    assert sweep_unreferenced(store, blobs) == 1
    assert not blobs.path(erased.sha256).exists()
    assert blobs.path(alices.sha256).exists()  # alice shares the same bytes
    assert store.readable_file(people["alice"], alices.id) == alices


def test_a_blob_kept_just_now_is_not_swept(store, people, blobs):
    file = _upload(blobs, b"racing")
    message = _share(store, people, file)
    store.delete_message(message, by="alice", origin="n1")
    os.utime(blobs.path(file.sha256))  # an upload of the same bytes just kept it
    assert sweep_unreferenced(store, blobs) == 0
    assert blobs.path(file.sha256).exists()
    assert remove_orphans(store, blobs) == (0, None)  # still too fresh
    assert remove_orphans(store, blobs, idle_seconds=0) == (1, None)


def test_remove_orphans_walks_blobs_no_row_uses_in_bounded_steps(store, people, blobs):
    used = _upload(blobs, b"used")
    _share(store, people, used)
    orphans = sorted(_upload(blobs, bytes([i])).sha256 for i in range(5))
    assert remove_orphans(store, blobs, idle_seconds=0) == (5, None)
    assert list(blobs.stored()) == [used.sha256]
    more = sorted(_upload(blobs, bytes([i])).sha256 for i in range(10, 13))
    removed, cursor = remove_orphans(store, blobs, limit=2, idle_seconds=0)
    assert cursor is not None
    total = removed
    while cursor is not None:
        removed, cursor = remove_orphans(store, blobs, after=cursor, limit=2, idle_seconds=0)
        total += removed
    assert total == 3
    assert not set(orphans + more) & set(blobs.stored())
    assert hashlib.sha256(b"used").hexdigest() in set(blobs.stored())
