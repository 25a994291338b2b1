"""The store's private rooms, roles, invites, bans, edits, deletions, read markers, the
room journal and retention (issue 16), on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import text

from chatsecure.storage.db import database_files, make_engine, upgrade
from chatsecure.storage.store import (
    BannedError,
    LastOwnerError,
    NewMessage,
    NoSuchAccountError,
    NoSuchRoomError,
    Removed,
    RoomCaps,
    RoomExistsError,
    RoomLimitError,
    RoomMemberRecord,
    RoomRecord,
    RoomView,
    Store,
)


@pytest.fixture
def people(store: Store) -> dict[str, int]:
    store.create_accounts([("alice", "h"), ("bob", "h"), ("carol", "h")], [])
    store.create_account("root", "h", [], admin=True)
    return {a.name: a.id for a in store.list_accounts()}


def _say(store: Store, sender: str, room: str, text: str = "hi") -> int:
    sender_id = store.get_account(sender).id  # type: ignore[union-attr]
    room_id = store.room_id(room)
    message = NewMessage(sender_id, sender, text, room_id=room_id, room_name=room)
    return store.insert_messages([message])[0].id


def _dm(store: Store, sender: str, recipient: str, text: str = "psst") -> int:
    ids = {a.name: a.id for a in store.list_accounts()}
    message = NewMessage(
        ids[sender], sender, text, recipient_id=ids[recipient], recipient_name=recipient
    )
    return store.insert_messages([message])[0].id


def _events(store: Store, not_from: str = "nobody") -> list[tuple[object, ...]]:
    """Every journal row as (origin, kind, room, user, by, message_id, detail, flag)."""
    return [
        (e.origin, e.kind, e.room, e.user, e.by, e.message_id, e.detail, e.flag)
        for e in store.room_events_after(0, not_from=not_from)
    ]


def test_accounts_can_be_admins(store, people):
    assert store.get_account("root").is_admin
    assert not store.get_account("alice").is_admin
    store.set_admin("ALICE", True)
    assert store.get_account("alice").is_admin
    store.set_admin("alice", False)
    assert not store.get_account("alice").is_admin
    with pytest.raises(NoSuchAccountError):
        store.set_admin("nobody", True)


def test_create_room_makes_the_creator_owner(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"], private=True, topic="on call")
    assert store.room("ops") == RoomRecord(room_id, "ops", True, "on call", people["alice"])
    assert store.room("nope") is None
    assert store.room_members(room_id) == [RoomMemberRecord(people["alice"], "alice", "owner")]
    assert store.role_of(people["alice"], room_id) == "owner"
    assert store.role_of(people["bob"], room_id) is None
    record = store.room("ops")
    assert store.room_view("ops", people["alice"]) == RoomView(record, "owner")
    assert store.room_view("ops", people["bob"]) == RoomView(record, None)
    assert store.room_view("nope", people["bob"]) is None
    with pytest.raises(RoomExistsError, match="ops"):
        store.create_room("ops")
    plain = store.create_room("plain")  # the admin's way: no owner, public
    assert store.room("plain") == RoomRecord(plain, "plain", False, "", None)
    assert store.room_members(plain) == []


def test_create_room_respects_the_caps(store, people):
    caps = RoomCaps(total=10, per_creator=1)
    store.create_room("one", creator_id=people["alice"], caps=caps)
    with pytest.raises(RoomLimitError):
        store.create_room("two", creator_id=people["alice"], caps=caps)
    assert store.room("two") is None


def test_join_room_creating_makes_the_joiner_owner(store, people):
    room_id, newly = store.join_room(people["bob"], "new", create=True)
    assert newly
    assert store.role_of(people["bob"], room_id) == "owner"
    assert store.join_room(people["carol"], "new", create=True) == (room_id, True)
    assert store.role_of(people["carol"], room_id) == "member"


def test_a_private_room_needs_an_invite_which_joining_uses_up(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"], private=True)
    with pytest.raises(NoSuchRoomError, match="no room named 'ops'") as hidden:
        store.join_room(people["bob"], "ops", create=True)
    with pytest.raises(NoSuchRoomError) as missing:
        store.join_room(people["bob"], "nowhere", create=False)
    assert str(hidden.value) == str(missing.value).replace("nowhere", "ops")
    store.invite(room_id, people["bob"], people["alice"], origin="n1")
    assert store.join_room(people["bob"], "ops", create=False) == (room_id, True)
    assert store.join_room(people["bob"], "ops", create=False) == (room_id, False)
    store.leave_room(people["bob"], room_id)
    with pytest.raises(NoSuchRoomError):  # the invite was used up
        store.join_room(people["bob"], "ops", create=False)


def _moderator_invites(store: Store, people: dict[str, int], room_id: int) -> None:
    """bob joins and becomes a moderator, and invites carol."""
    store.invite(room_id, people["bob"], people["alice"], origin="n1")
    store.join_room(people["bob"], "ops", create=False)
    assert store.set_role(room_id, people["bob"], "moderator", by="alice", origin="n1")
    assert store.invite(room_id, people["carol"], people["bob"], origin="n1")


@pytest.mark.parametrize(
    "role_gone",
    [
        lambda store, room, bob: store.set_role(room, bob, "member", by="alice", origin="n1"),
        lambda store, room, bob: store.remove_member(
            room, bob, by="alice", reason="", ban=False, origin="n1"
        ),
        lambda store, room, bob: store.remove_member(
            room, bob, by="alice", reason="", ban=True, origin="n1"
        ),
        lambda store, room, bob: store.leave_room(bob, room),
        lambda store, room, bob: store.delete_account("bob"),
    ],
    ids=["demoted", "kicked", "banned", "left", "deleted"],
)
def test_an_invite_lapses_for_good_when_the_inviter_role_is_gone(store, people, role_gone):
    room_id = store.create_room("ops", creator_id=people["alice"], private=True)
    _moderator_invites(store, people, room_id)
    role_gone(store, room_id, people["bob"])
    with pytest.raises(NoSuchRoomError):
        store.join_room(people["carol"], "ops", create=False)
    if store.get_account("bob") is not None:  # back in the room as a moderator
        store.unban(room_id, people["bob"], origin="n1")
        store.invite(room_id, people["bob"], people["alice"], origin="n1")
        store.join_room(people["bob"], "ops", create=False)
        assert store.set_role(room_id, people["bob"], "moderator", by="alice", origin="n1")
    with pytest.raises(NoSuchRoomError):  # the invitation does not come back
        store.join_room(people["carol"], "ops", create=False)


def test_an_invite_outlives_changes_that_leave_the_inviter_a_moderator(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"], private=True)
    _moderator_invites(store, people, room_id)
    assert store.set_role(room_id, people["bob"], "owner", by="alice", origin="n1")
    store.remove_member(room_id, people["alice"], by="bob", reason="", ban=False, origin="n1")
    assert store.join_room(people["carol"], "ops", create=False)[1]


def test_a_server_admin_invites_anywhere_until_no_longer_admin(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"], private=True)
    mine = store.create_room("mine", creator_id=people["root"], private=True)
    store.create_accounts([("dave", "h"), ("erin", "h")], [])
    dave, erin = (store.get_account(n).id for n in ("dave", "erin"))
    assert store.invite(room_id, dave, people["root"], origin="admin")  # not in the room
    assert store.join_room(dave, "ops", create=False)[1]
    assert store.invite(room_id, erin, people["root"], origin="admin")
    assert store.invite(mine, erin, people["root"], origin="admin")
    store.set_admin("root", False)
    store.set_admin("root", True)
    with pytest.raises(NoSuchRoomError):  # lapsed, where root is no owner nor moderator
        store.join_room(erin, "ops", create=False)
    assert store.join_room(erin, "mine", create=False)[1]  # root owns it


def test_only_an_owner_moderator_or_admin_may_invite(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"], private=True)
    store.invite(room_id, people["bob"], people["alice"], origin="n1")
    store.join_room(people["bob"], "ops", create=False)
    assert not store.invite(room_id, people["carol"], people["bob"], origin="n1")  # a member
    assert not store.invite(room_id, people["carol"], people["carol"], origin="n1")  # outside
    with pytest.raises(NoSuchRoomError):
        store.join_room(people["carol"], "ops", create=False)
    assert [e.user for e in store.room_events_after(0, not_from="x")] == ["alice", "bob"]


def test_inviting_a_member_changes_nothing(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"], private=True)
    made = _events(store)
    store.invite(room_id, people["alice"], people["alice"], origin="n1")
    assert _events(store) == made
    with pytest.raises(NoSuchRoomError):
        store.invite(room_id + 99, people["bob"], people["alice"], origin="n1")


def test_roles_and_topics_are_journaled(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"], topic="old")
    store.join_room(people["bob"], "ops", create=False)
    store.set_topic(room_id, "new topic", by="alice", origin="n1")
    assert store.room("ops").topic == "new topic"
    assert store.set_role(room_id, people["bob"], "moderator", by="alice", origin="n1")
    assert not store.set_role(room_id, people["carol"], "moderator", by="alice", origin="n1")
    assert store.room_members(room_id) == [
        RoomMemberRecord(people["alice"], "alice", "owner"),
        RoomMemberRecord(people["bob"], "bob", "moderator"),
    ]
    assert _events(store) == [
        (":admin", "joined", "ops", "alice", None, None, None, None),  # the owner, as made
        ("n1", "topic", "ops", None, "alice", None, "new topic", None),
        ("n1", "role", "ops", "bob", "alice", None, "moderator", None),
    ]
    [_, _, role] = store.room_events_after(0, not_from="n2")
    assert role.account_id == people["bob"]
    with pytest.raises(NoSuchRoomError):
        store.set_topic(room_id + 99, "x", by="alice", origin="n1")


def test_a_room_keeps_its_last_owner(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"])
    store.join_room(people["bob"], "ops", create=False)
    for role in ("moderator", "member"):
        with pytest.raises(LastOwnerError, match="alice is the only owner of 'ops'"):
            store.set_role(room_id, people["alice"], role, by="root", origin="n1")
    assert store.set_role(room_id, people["alice"], "owner", by="root", origin="n1")
    assert store.set_role(room_id, people["bob"], "owner", by="alice", origin="n1")
    assert store.set_role(room_id, people["alice"], "member", by="bob", origin="n1")
    with pytest.raises(LastOwnerError):
        store.set_role(room_id, people["bob"], "member", by="root", origin="n1")
    assert store.room_members(room_id) == [
        RoomMemberRecord(people["alice"], "alice", "member"),
        RoomMemberRecord(people["bob"], "bob", "owner"),
    ]
    unowned = store.create_room("plain")  # an admin's room may have no owner at all
    store.join_room(people["carol"], "plain", create=False)
    assert store.set_role(unowned, people["carol"], "moderator", by="root", origin="n1")


def test_kick_ban_and_unban(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"])
    store.join_room(people["bob"], "ops", create=False)
    kick = {"by": "alice", "reason": "", "ban": False, "origin": "a"}
    assert store.remove_member(room_id, people["bob"], **kick) is Removed.MEMBER
    assert store.role_of(people["bob"], room_id) is None
    # Not a member: a kick does nothing.
    assert store.remove_member(room_id, people["bob"], **kick) is Removed.NOTHING
    assert not Removed.NOTHING
    assert store.join_room(people["bob"], "ops", create=False)[1]  # a kick is no ban
    assert (
        store.remove_member(room_id, people["bob"], by="alice", reason="spam", ban=True, origin="a")
        is Removed.MEMBER
    )
    with pytest.raises(BannedError):
        store.join_room(people["bob"], "ops", create=False)
    # A ban of a non-member holds too (in a public room it is told on join), and an
    # invite lifts no ban.
    assert (
        store.remove_member(room_id, people["carol"], by="alice", reason="", ban=True, origin="a")
        is Removed.BANNED
    )
    store.invite(room_id, people["carol"], people["alice"], origin="a")
    with pytest.raises(BannedError):
        store.join_room(people["carol"], "ops", create=False)
    assert store.unban(room_id, people["bob"], origin="a")
    assert not store.unban(room_id, people["bob"], origin="a")
    assert store.join_room(people["bob"], "ops", create=False)[1]
    # Only members' removals are journaled: a non-member's ban is news for nobody.
    assert [e[1:] for e in _events(store)] == [
        ("joined", "ops", "alice", None, None, None, None),
        ("kicked", "ops", "bob", "alice", None, "", False),
        ("kicked", "ops", "bob", "alice", None, "spam", True),
        ("invited", "ops", "carol", "alice", None, "", None),
    ]


def test_a_private_room_stays_missing_to_whom_a_ban_was_not_told(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"], private=True)
    store.invite(room_id, people["bob"], people["alice"], origin="a")
    store.join_room(people["bob"], "ops", create=False)
    store.invite(room_id, people["carol"], people["alice"], origin="a")  # pending
    store.create_account("dave", "h", [])
    dave = store.get_account("dave").id
    ban = {"by": "alice", "reason": "spam", "ban": True, "origin": "a"}
    assert store.remove_member(room_id, people["bob"], **ban) is Removed.MEMBER
    assert store.remove_member(room_id, people["carol"], **ban) is Removed.BANNED
    assert store.remove_member(room_id, dave, **ban) is Removed.BANNED
    with pytest.raises(BannedError):  # bob was a member, and was told
        store.join_room(people["bob"], "ops", create=False)
    with pytest.raises(NoSuchRoomError) as missing:
        store.join_room(people["carol"], "nowhere", create=False)
    for never_told in (people["carol"], dave):  # the ban dropped carol's invite
        with pytest.raises(NoSuchRoomError) as hidden:
            store.join_room(never_told, "ops", create=False)
        assert str(hidden.value) == str(missing.value).replace("nowhere", "ops")
    # Banned again as a non-member, bob still knows; invited after a ban, dave knows.
    assert store.remove_member(room_id, people["bob"], **ban) is Removed.BANNED
    with pytest.raises(BannedError):
        store.join_room(people["bob"], "ops", create=False)
    store.invite(room_id, dave, people["alice"], origin="a")
    with pytest.raises(BannedError):
        store.join_room(dave, "ops", create=False)
    assert [(e.kind, e.user) for e in store.room_events_after(0, not_from="x")] == [
        ("joined", "alice"),  # made with an owner
        ("invited", "bob"),
        ("invited", "carol"),
        ("kicked", "bob"),
        ("invited", "dave"),
    ]


def test_a_kick_drops_the_invite(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"], private=True)
    store.invite(room_id, people["bob"], people["alice"], origin="a")
    store.remove_member(room_id, people["bob"], by="alice", reason="", ban=True, origin="a")
    store.unban(room_id, people["bob"], origin="a")
    with pytest.raises(NoSuchRoomError):
        store.join_room(people["bob"], "ops", create=False)


def test_list_rooms_hides_private_rooms_from_non_members(store, people):
    store.create_room("ops", creator_id=people["alice"], private=True, topic="t")
    store.create_room("public", topic="hello")
    shown = store.list_rooms(people["bob"])
    assert [(r.name, r.topic, r.private) for r in shown] == [("public", "hello", False)]
    mine = store.list_rooms(people["alice"])
    assert [(r.name, r.joined, r.private) for r in mine] == [
        ("ops", True, True),
        ("public", False, False),
    ]
    assert [r.name for r in store.list_rooms()] == ["ops", "public"]  # the admin sees all


def test_login_snapshot_has_roles_and_read_markers(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"])
    store.join_room(people["bob"], "ops", create=False)
    first = _say(store, "bob", "ops")
    _say(store, "bob", "ops")
    direct = _dm(store, "bob", "alice")
    assert store.mark_read(people["alice"], first, room_id=room_id, origin="n1") == first
    assert store.mark_read(people["alice"], direct, peer_id=people["bob"], origin="n1") == direct
    seen = store.login_snapshot(people["alice"], history=5, peers=5)
    assert seen.members[room_id] == [
        RoomMemberRecord(people["alice"], "alice", "owner"),
        RoomMemberRecord(people["bob"], "bob", "member"),
    ]
    assert seen.room_reads == {room_id: first}
    assert seen.peer_reads == {"bob": direct}
    assert store.login_snapshot(people["bob"], history=5, peers=5).peer_reads == {"alice": 0}


def test_read_markers_only_move_forward_and_stop_at_the_newest(store, people):
    room_id = store.create_room("ops", creator_id=people["alice"])
    ids = [_say(store, "alice", "ops") for _ in range(3)]
    mark = store.mark_read
    assert mark(people["alice"], ids[1], room_id=room_id, origin="n1") == ids[1]
    assert mark(people["alice"], ids[0], room_id=room_id, origin="n1") is None  # backwards
    assert mark(people["alice"], ids[1], room_id=room_id, origin="n1") is None  # same
    assert mark(people["alice"], ids[2] + 1000, room_id=room_id, origin="n1") == ids[2]
    assert mark(people["bob"], ids[2], room_id=room_id, origin="n1") is None  # not a member
    direct = _dm(store, "alice", "bob")
    assert mark(people["bob"], direct + 5, peer_id=people["alice"], origin="n1") == direct
    assert mark(people["carol"], direct, peer_id=people["alice"], origin="n1") is None
    reads = [e for e in store.room_events_after(0, not_from="x") if e.kind == "read"]
    assert [(e.account_id, e.room, e.peer_id, e.message_id) for e in reads] == [
        (people["alice"], "ops", None, ids[1]),
        (people["alice"], "ops", None, ids[2]),
        (people["bob"], None, people["alice"], direct),
    ]
    with pytest.raises(ValueError, match="exactly one"):
        mark(people["bob"], 1, origin="n1")


def test_edit_and_delete(store, people):
    store.create_room("ops", creator_id=people["alice"])
    message_id = _say(store, "alice", "ops", "helo")
    assert store.edit_message(message_id, "hello", edited_ms=1234, by="alice", origin="n1")
    ref = store.message_ref(message_id)
    assert ref is not None
    assert (ref.message.text, ref.message.edited_ms, ref.message.deleted) == ("hello", 1234, False)
    assert (ref.sender_id, ref.room_id, ref.pair) == (people["alice"], store.room_id("ops"), None)
    assert store.delete_message(message_id, by="root", origin="n1")
    gone = store.message(message_id)
    assert gone is not None
    assert (gone.text, gone.edited_ms, gone.deleted) == ("", None, True)
    assert not store.delete_message(message_id, by="root", origin="n1")
    assert not store.edit_message(message_id, "again", edited_ms=1, by="alice", origin="n1")
    assert not store.edit_message(message_id + 99, "x", edited_ms=1, by="alice", origin="n1")
    assert store.message(message_id + 99) is None
    history = store.room_history(store.room_id("ops"))
    assert [(m.text, m.deleted) for m in history.messages] == [("", True)]
    # The edit's text left the journal with the message.
    assert _events(store) == [
        (":admin", "joined", "ops", "alice", None, None, None, None),
        ("n1", "edited", "ops", None, "alice", message_id, None, None),
        ("n1", "deleted", "ops", None, "root", message_id, None, None),
    ]


def test_edits_of_direct_messages_name_the_pair(store, people):
    message_id = _dm(store, "bob", "alice")
    ref = store.message_ref(message_id)
    assert ref is not None
    assert ref.pair == tuple(sorted((people["alice"], people["bob"])))
    assert store.edit_message(message_id, "new", edited_ms=5, by="bob", origin="n1")
    store.delete_message(message_id, by="bob", origin="n1")
    for event in store.room_events_after(0, not_from="x"):
        assert (event.room, event.account_id, event.peer_id) == (
            None,
            people["bob"],
            people["alice"],
        )


def test_room_events_after_skips_its_own_origin_and_pages(store, people):
    room_id = store.create_room("ops")
    assert store.last_room_event_id() == 0
    for i in range(5):
        store.set_topic(room_id, f"t{i}", by="x", origin="n1" if i % 2 else "n2")
    others = store.room_events_after(0, not_from="n1")
    assert [e.detail for e in others] == ["t0", "t2", "t4"]
    assert [e.detail for e in store.room_events_after(others[0].id, not_from="n1", limit=1)] == [
        "t2"
    ]
    assert store.last_room_event_id() == store.room_events_after(0, not_from="z")[-1].id


def test_prune_room_events_in_batches(store, people):
    room_id = store.create_room("ops")
    for i in range(5):
        store.set_topic(room_id, f"t{i}", by="x", origin="n1")
    last = store.last_room_event_id()
    future = store.room_events_after(0, not_from="z")[-1].at_ms + 1
    assert store.prune_room_events(future, batch=3) == 3
    assert store.prune_room_events(future, batch=3) == 2
    assert store.prune_room_events(future, batch=3) == 0
    assert store.prune_room_events(0) == 0
    store.set_topic(room_id, "after", by="x", origin="n1")
    assert store.last_room_event_id() > last  # ids are never reused


def _age(store: Store, message_ids: list[int], ts_ms: int) -> None:
    with store.engine.begin() as conn:
        for message_id in message_ids:
            conn.execute(
                text("UPDATE messages SET ts_ms = :ts WHERE id = :id"),
                {"ts": ts_ms, "id": message_id},
            )


def test_purge_messages_in_bounded_batches(store, people):
    store.create_room("ops")
    store.create_room("dev")
    old_ops = [_say(store, "alice", "ops") for _ in range(5)]
    old_dev = [_say(store, "alice", "dev") for _ in range(2)]
    old_dm = _dm(store, "alice", "bob")
    new = _say(store, "alice", "ops")
    _age(store, [*old_ops, *old_dev, old_dm], 1000)
    store.edit_message(old_ops[0], "secret edit", edited_ms=5, by="alice", origin="n1")
    ops = store.room_id("ops")
    assert store.purge_messages(2000, room_id=ops, batch=2) == 2
    assert store.purge_messages(2000, room_id=ops, batch=2) == 2
    assert store.purge_messages(2000, room_id=ops, batch=2) == 1
    assert store.purge_messages(2000, room_id=ops, batch=2) == 0
    assert store.message(old_dev[0]) is not None  # another room's stay
    assert store.purge_messages(2000, batch=10) == 3  # dev's and the direct one
    assert [m.id for m in store.room_history(ops).messages] == [new]
    assert store.message_count() == 1
    assert [e.detail for e in store.room_events_after(0, not_from="x")] == [None]


def test_delete_account_with_erase_deletes_what_it_sent(store, people):
    store.create_room("ops", creator_id=people["alice"])
    store.join_room(people["bob"], "ops", create=False)
    said = _say(store, "bob", "ops", "mine")
    store.edit_message(said, "mine, edited", edited_ms=1, by="bob", origin="n1")
    _dm(store, "bob", "alice", "to alice")
    kept = _dm(store, "alice", "bob", "from alice")
    other = _say(store, "alice", "ops")
    store.delete_account("carol")  # no erase: nothing else happens
    deleted = store.delete_account("BOB", erase=True)
    assert deleted.name == "bob"
    assert store.message(said) is None
    assert [row[0] for row in store.iter_message_rows()] == [kept, other]
    assert [(e.kind, e.detail) for e in store.room_events_after(0, not_from="x")] == [
        ("joined", None),
        ("edited", None),
    ]
    with pytest.raises(NoSuchAccountError):
        store.delete_account("bob", erase=True)


def test_a_deleted_text_leaves_the_sqlite_file(tmp_path):
    path = tmp_path / "chat.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    store = Store(engine)
    store.create_account("alice", "h", ["ops"])
    secret = "the launch code is 0451-" + "x" * 200

    def on_disk() -> bytes:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return b"".join(p.read_bytes() for p in database_files(engine.url))

    message_id = _say(store, "alice", "ops", secret)
    assert secret.encode() in on_disk()  # else the test below would prove nothing
    assert store.delete_message(message_id, by="alice", origin="n1")
    assert b"launch code" not in on_disk()
    store.close()
