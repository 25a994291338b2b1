"""Moderation, edits and read markers in the service: the journal of changes made
elsewhere (the admin CLI, another node), and retention, with a fake clock."""

from __future__ import annotations

import dataclasses

from sqlalchemy import text

from chatsecure.protocol import (
    Create,
    Delete,
    Deleted,
    Edit,
    Edited,
    Error,
    History,
    HistoryReply,
    Invited,
    Join,
    Joined,
    Kicked,
    Member,
    Message,
    Ok,
    ReadMarker,
    RoleChanged,
    Send,
    SetTopic,
    TopicChanged,
)
from chatsecure.server.core.housekeeping import BLOCKED_POLL_INTERVAL
from chatsecure.server.core.retention import Retention
from chatsecure.storage.store import ADMIN_ORIGIN, now_ms

from .conftest import FakeClock


def tick(core, clock: FakeClock, seconds: float = BLOCKED_POLL_INTERVAL) -> None:
    """Run the housekeeping as its thread would, ``seconds`` on."""
    clock.now += seconds
    core._housekeeper._tick()


def test_changes_made_elsewhere_reach_this_nodes_sessions(core, login, store, clock):
    alice, bob = login("alice"), login("bob")
    tick(core, clock)  # the journal's first poll takes the newest row as its start
    alice.send(Create(room="ops", private=True, req="c"))
    alice.outbox.next(Joined, room="ops")
    room = store.room("ops")
    bob_id = store.get_account("bob").id
    store.invite(room.id, bob_id, store.get_account("alice").id, origin=ADMIN_ORIGIN)
    store.set_topic(room.id, "from the CLI", by="root", origin=ADMIN_ORIGIN)
    tick(core, clock)
    assert bob.outbox.next(Invited, room="ops").by == "alice"
    assert alice.outbox.next(TopicChanged, room="ops").topic == "from the CLI"
    bob.send(Join(room="ops", req="j"))
    bob.outbox.next(Joined, room="ops")
    store.set_role(room.id, bob_id, "moderator", by="root", origin=ADMIN_ORIGIN)
    store.remove_member(room.id, bob_id, by="root", reason="bye", ban=True, origin=ADMIN_ORIGIN)
    tick(core, clock)
    assert alice.outbox.next(RoleChanged, room="ops").role == "moderator"
    kicked = bob.outbox.next(Kicked, room="ops")
    assert (kicked.by, kicked.reason, kicked.ban) == ("root", "bye", True)
    alice.outbox.next(Member, room="ops", user="bob", event="left")
    alice.send(Send(room="ops", text="bob is gone", req="s"))
    alice.outbox.next(Message, text="bob is gone")
    assert not [f for f in bob.outbox.unread() if isinstance(f, Message)]


def test_a_room_made_elsewhere_with_an_owner_reaches_every_session_of_the_owner(
    core, login, store, clock
):
    first, second = login("alice"), login("alice")
    tick(core, clock)
    owner = store.get_account("alice")
    store.create_room("cliroom", creator_id=owner.id, private=True, topic="t", origin=ADMIN_ORIGIN)
    tick(core, clock)
    for session in (first, second):
        joined = session.outbox.next(Joined, room="cliroom")
        assert (joined.req, joined.role, joined.private, joined.topic) == (None, "owner", True, "t")
        session.outbox.next(HistoryReply, room="cliroom")
    tick(core, clock)  # told once
    assert not [f for f in first.outbox.unread() if isinstance(f, Joined)]
    second.send(Send(room="cliroom", text="mine now", req="s"))
    second.outbox.next(Ok, req="s")
    first.outbox.next(Message, text="mine now")
    store.set_topic(store.room("cliroom").id, "later", by="root", origin=ADMIN_ORIGIN)
    tick(core, clock)
    assert first.outbox.next(TopicChanged, room="cliroom").topic == "later"


def test_this_nodes_own_changes_are_not_told_twice(core, login, clock):
    alice = login("alice")
    tick(core, clock)
    alice.send(Create(room="mine", req="c"))
    alice.outbox.next(Joined, room="mine")
    alice.send(SetTopic(room="mine", topic="once", req="t"))
    alice.outbox.next(TopicChanged, room="mine")
    alice.outbox.next(Ok, req="t")
    tick(core, clock)
    assert not [f for f in alice.outbox.unread() if isinstance(f, TopicChanged)]


def test_edits_deletions_and_reads_from_elsewhere(core, login, store, clock):
    alice, bob = login("alice"), login("bob")
    tick(core, clock)
    alice.send(Send(room="general", text="first", req="s"))
    msg = alice.outbox.next(Ok, req="s").id
    bob.outbox.next(Message, id=msg)
    store.edit_message(msg, "edited", edited_ms=now_ms(), by="alice", origin="node-b")
    tick(core, clock)
    assert bob.outbox.next(Edited, id=msg).text == "edited"
    store.delete_message(msg, by="root", origin=ADMIN_ORIGIN)
    room_id = store.room("general").id
    store.mark_read(store.get_account("bob").id, msg, room_id=room_id, origin="node-b")
    tick(core, clock)
    assert bob.outbox.next(Deleted, id=msg).by == "root"
    assert bob.outbox.next(ReadMarker, room="general").up_to == msg


def test_a_deleted_message_is_missing_to_edit_and_delete(core, login):
    alice = login("alice")
    alice.send(Send(room="general", text="oops", req="s"))
    msg = alice.outbox.next(Ok, req="s").id
    alice.send(Delete(id=msg, req="d"))
    alice.outbox.next(Ok, req="d")
    alice.send(Edit(id=msg, text="x", req="e"))
    assert alice.outbox.next(Error, req="e").code == "no_such_message"
    alice.send(Delete(id=msg, req="d2"))
    assert alice.outbox.next(Error, req="d2").code == "no_such_message"


def test_retention_deletes_in_bounded_batches_and_stops(core, login, store, clock, settings):
    alice = login("alice")
    for n in range(7):
        alice.send(Send(room="general", text=f"m{n}", req=n))
        alice.outbox.next(Ok, req=n)
    history = dataclasses.replace(settings.history, retain_days=1)
    core.reconfigure(dataclasses.replace(settings, history=history))
    part = Retention(settings=core._live, store=store, clock=clock)
    # Everything stored is newer than a day: nothing goes.
    assert part.tick(clock.now) == 0
    with store.writing() as s, s.begin():
        s.execute(text("UPDATE messages SET ts_ms = ts_ms - 2 * 86400000"))
    part._next = clock.now
    assert part.tick(clock.now) == 7
    assert part.tick(clock.now + 1) == 0  # done: it looks again in an hour
    alice.send(History(room="general", req="h"))
    assert alice.outbox.next(HistoryReply, req="h").messages == ()


def test_the_search_index_is_compacted_once_a_delay_after_the_first_deletion(
    core, login, store, clock, monkeypatch
):
    delay = 10.0  # shorter than the idle timeout the fake clock would otherwise pass
    history = dataclasses.replace(core.settings.history, search_compact_delay=delay)
    core.reconfigure(dataclasses.replace(core.settings, history=history))
    compacted: list[float] = []
    compact = store.compact_search_index

    def counted() -> None:
        compacted.append(clock.now)
        compact()

    monkeypatch.setattr(store, "compact_search_index", counted)
    alice = login("alice")
    ids = []
    for n in range(3):
        alice.send(Send(room="general", text=f"m{n}", req=n))
        ids.append(alice.outbox.next(Ok, req=n).id)
    tick(core, clock, 1)
    assert compacted == []  # nothing deleted: nothing to do
    alice.send(Delete(id=ids[0], req="d0"))
    alice.outbox.next(Ok, req="d0")
    tick(core, clock, 1)  # the first deletion since the last compaction sets the time
    first = clock.now
    alice.send(Delete(id=ids[1], req="d1"))
    alice.outbox.next(Ok, req="d1")
    tick(core, clock, delay - 2)
    assert compacted == []
    tick(core, clock, 2)  # one compaction for both deletions
    assert compacted == [first + delay]
    tick(core, clock, delay + 1)
    assert compacted == [first + delay]  # nothing deleted since
    alice.send(Delete(id=ids[2], req="d2"))
    alice.outbox.next(Ok, req="d2")
    tick(core, clock, 1)
    tick(core, clock, delay)
    assert len(compacted) == 2
