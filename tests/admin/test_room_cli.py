"""``chatsecure-admin room ...``, ``admin``, ``adduser --admin``, ``purge`` and
``deluser --erase``: what they change in the store, what they print, how they refuse."""

import io
import json

import pytest
from sqlalchemy import text

from chatsecure.admin.cli import main
from chatsecure.admin.commands import ROOM_COMMANDS
from chatsecure.storage.store import BannedError, NewMessage, RoomMemberRecord, Store
from tests.admin.test_cli import PASSWORD, _store


@pytest.fixture
def people(migrated):
    for name in ("alice", "bob"):
        assert migrated("adduser", name, "--password-stdin", stdin=PASSWORD).code == 0
    return migrated


def _members(admin, room: str) -> list[tuple[str, str]]:
    store = _store(admin)
    room_id = store.room_id(room)
    assert room_id is not None
    return [(m.name, m.role) for m in store.room_members(room_id)]


def _refused(result, problem: str) -> None:
    assert result.code != 0
    assert result.err.startswith("chatsecure-admin: error: ")
    assert problem in result.err
    assert "Traceback" not in result.err


def test_every_room_action_has_help_with_an_example():
    for command in ROOM_COMMANDS:
        out, err = io.StringIO(), io.StringIO()
        assert main(["room", command.name, "--help"], stdout=out, stderr=err) == 0
        assert "chatsecure-admin room " + command.name in out.getvalue()
        assert err.getvalue() == ""
    out = io.StringIO()
    assert main(["room", "--help"], stdout=out, stderr=io.StringIO()) == 0
    assert all(command.name in out.getvalue() for command in ROOM_COMMANDS)


def test_room_without_an_action_is_a_usage_error(migrated):
    result = migrated("room")
    assert result.code == 2
    assert "ACTION" in result.err


def test_room_create_private_with_topic_and_owner(people):
    result = people("room", "create", "Ops", "--private", "--topic", "on call", "--owner", "ALICE")
    assert result.code == 0, result.err
    assert result.out.strip() == "created private room #ops, owned by 'alice'"
    room = _store(people).room("ops")
    assert room is not None
    assert (room.private, room.topic) == (True, "on call")
    assert _members(people, "ops") == [("alice", "owner")]
    assert people("room", "create", "plain").out.strip() == "created room #plain"
    _refused(people("room", "create", "ops"), "already exists")
    _refused(people("room", "create", "no spaces"), "not a valid room name")
    _refused(people("room", "create", "x", "--owner", "nobody"), "no account named 'nobody'")
    _refused(people("room", "create", "y", "--topic", "t" * 301), "at most 300 characters")
    _refused(people("room", "create", "z", "--topic", "two\nlines"), "--topic")
    assert _store(people).room("x") is None


def test_room_topic(people):
    people("room", "create", "dev")
    assert people("room", "topic", "dev", "release Friday").out.strip() == "set the topic of #dev"
    assert _store(people).room("dev").topic == "release Friday"  # type: ignore[union-attr]
    assert "cleared" in people("room", "topic", "dev", "").out
    assert _store(people).room("dev").topic == ""  # type: ignore[union-attr]
    _refused(people("room", "topic", "nowhere", "x"), "no room named 'nowhere'")
    _refused(people("room", "topic", "dev", "bell\x07"), "TEXT has a control character (U+0007)")
    _refused(people("room", "topic", "dev", "a\nb"), "TEXT has a line break")
    _refused(people("room", "topic", "dev", "a\r\nb"), "TEXT has a line break")
    _refused(people("room", "topic", "dev", "a\tb"), "TEXT has a tab")
    _refused(people("room", "topic", "dev", "del\x7f"), "TEXT has a control character (U+007F)")
    _refused(people("room", "kick", "dev", "bob", "--reason", "x\ny"), "--reason has a line break")
    [topic, cleared] = _store(people).room_events_after(0, not_from="n1")
    assert (topic.origin, topic.kind, topic.by, topic.detail) == (
        ":admin",
        "topic",
        "(admin)",
        "release Friday",
    )
    assert cleared.detail == ""


def test_room_role_and_list_members(people):
    people("room", "create", "dev", "--owner", "alice")
    _store(people).join_room(_store(people).get_account("bob").id, "dev", create=False)  # type: ignore[union-attr]
    assert people("room", "role", "dev", "BOB", "moderator").out.strip() == (
        "'bob' is now moderator of #dev"
    )
    table = people("room", "list-members", "dev").out.splitlines()
    assert [line.split() for line in table] == [
        ["NAME", "ROLE"],
        ["alice", "owner"],
        ["bob", "moderator"],
    ]
    listed = json.loads(people("room", "list-members", "dev", "--json").out)
    assert listed == [{"name": "alice", "role": "owner"}, {"name": "bob", "role": "moderator"}]
    people("room", "create", "empty")
    assert "no members" in people("room", "list-members", "empty").out
    assert json.loads(people("room", "list-members", "empty", "--json").out) == []
    _refused(people("room", "role", "empty", "bob", "owner"), "'bob' is not a member of #empty")
    _refused(people("room", "role", "dev", "alice", "member"), "alice is the only owner of 'dev'")
    assert _members(people, "dev")[0] == ("alice", "owner")
    assert people("room", "role", "dev", "bob", "admin").code == 2  # not a role
    _refused(people("room", "role", "dev", "b@d", "member"), "not a valid username")
    _refused(people("room", "list-members", "nowhere"), "no room named")


def test_room_kick_ban_unban(people):
    people("room", "create", "dev", "--owner", "alice")
    store = _store(people)
    bob = store.get_account("bob")
    assert bob is not None
    store.join_room(bob.id, "dev", create=False)
    _refused(people("room", "ban", "dev", "alice"), "'alice' owns #dev; make them a member")
    kicked = people("room", "kick", "dev", "bob", "--reason", "off topic")
    assert kicked.code == 0, kicked.err
    assert "kicked 'bob' out of #dev" in kicked.out
    assert _members(people, "dev") == [("alice", "owner")]
    _refused(people("room", "kick", "dev", "bob"), "'bob' is not a member of #dev")
    assert people("room", "ban", "dev", "bob", "--reason", "spam").code == 0
    with pytest.raises(BannedError):
        store.join_room(bob.id, "dev", create=False)
    _refused(people("room", "ban", "dev", "bob", "--reason", "x" * 301), "--reason")
    assert "unbanned 'bob'" in people("room", "unban", "dev", "bob").out
    _refused(people("room", "unban", "dev", "bob"), "'bob' is not banned from #dev")
    assert store.join_room(bob.id, "dev", create=False)[1]
    events = [
        (e.origin, e.kind, e.user, e.by, e.detail, e.flag)
        for e in store.room_events_after(0, not_from="n1")
    ]
    # bob was banned after his kick, out of the room: only the kick is news for servers.
    assert events == [
        (":admin", "joined", "alice", None, None, None),  # made with an owner
        (":admin", "kicked", "bob", "(admin)", "off topic", False),
    ]


def test_admin_on_off_and_adduser_admin(people):
    assert "is a server admin" in people("admin", "Alice", "on").out
    assert _store(people).get_account("alice").is_admin  # type: ignore[union-attr]
    assert "no longer" in people("admin", "alice", "off").out
    assert not _store(people).get_account("alice").is_admin  # type: ignore[union-attr]
    _refused(people("admin", "nobody", "on"), "no account named 'nobody'")
    assert people("admin", "alice", "maybe").code == 2
    made = people("adduser", "root", "--admin", "--password-stdin", stdin=PASSWORD)
    assert made.out.startswith("created server admin 'root'")
    assert _store(people).get_account("root").is_admin  # type: ignore[union-attr]
    assert not _store(people).get_account("bob").is_admin  # type: ignore[union-attr]


def _say(store: Store, sender: str, room: str, body: str, ts_ms: int) -> int:
    account = store.get_account(sender)
    assert account is not None
    message = NewMessage(account.id, sender, body, room_id=store.room_id(room), room_name=room)
    message_id = store.insert_messages([message])[0].id
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE messages SET ts_ms = :ts WHERE id = :id"), {"ts": ts_ms, "id": message_id}
        )
    return message_id


OLD = 1_700_000_000_000  # 2023-11-14
NEW = 1_800_000_000_000  # 2027-01-15


def test_purge_asks_then_deletes_in_batches(people, monkeypatch):
    store = _store(people)
    people("room", "create", "dev")
    for i in range(5):
        _say(store, "alice", "general", f"old {i}", OLD)
    _say(store, "alice", "dev", "old in dev", OLD)
    kept = _say(store, "alice", "general", "new", NEW)
    _refused(people("purge", "--before", "2025-01-01"), "--yes")  # nobody to confirm
    assert store.message_count() == 7
    monkeypatch.setattr("chatsecure.admin.commands.PURGE_BATCH", 2)
    result = people("purge", "--before", "2025-01-01", "--room", "general", "--yes")
    assert result.code == 0, result.err
    assert result.out.strip() == ("deleted 5 messages in #general before 2025-01-01T00:00:00.000Z")
    assert store.message_count() == 2
    everywhere = people("purge", "--before", "2025-01-01", "--yes")
    assert everywhere.out.startswith("deleted 1 message in every room")
    assert [row[0] for row in store.iter_message_rows()] == [kept]
    _refused(people("purge", "--before", "soon", "--yes"), "--before")
    _refused(people("purge", "--before", "2025-01-01", "--room", "nowhere", "--yes"), "no room")
    assert people("purge").code == 2  # --before is required


def test_purge_confirms_at_a_terminal(people):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    store = _store(people)
    _say(store, "alice", "general", "old", OLD)
    argv = ["--config", str(people.config), "purge", "--before", "2025-01-01"]
    err = io.StringIO()
    assert main(argv, stdin=Terminal("n\n"), stdout=io.StringIO(), stderr=err) == 1
    assert "cannot be undone" in err.getvalue()
    assert store.message_count() == 1
    assert main(argv, stdin=Terminal("y\n"), stdout=io.StringIO(), stderr=io.StringIO()) == 0
    assert store.message_count() == 0


def test_deluser_erase_deletes_what_it_sent_after_saying_so(people):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    store = _store(people)
    _say(store, "bob", "general", "from bob", NEW)
    kept = _say(store, "alice", "general", "from alice", NEW)
    argv = ["--config", str(people.config), "deluser", "bob", "--erase"]
    err = io.StringIO()
    assert main(argv, stdin=Terminal("no\n"), stdout=io.StringIO(), stderr=err) == 1
    assert "every message it sent" in err.getvalue()
    assert store.message_count() == 2
    out = io.StringIO()
    assert main([*argv, "--yes"], stdin=io.StringIO(), stdout=out, stderr=io.StringIO()) == 0
    assert "every message it sent" in out.getvalue()
    assert store.get_account("bob") is None
    assert [row[0] for row in store.iter_message_rows()] == [kept]
    help_text = io.StringIO()
    main(["deluser", "--help"], stdout=help_text, stderr=io.StringIO())
    assert "--erase" in help_text.getvalue()


def test_the_admin_sees_private_rooms_members_see_roles(people):
    people("room", "create", "ops", "--private", "--owner", "alice")
    assert people("rooms").out.splitlines()[2].split() == ["ops", "1", "yes"]
    store = _store(people)
    bob = store.get_account("bob")
    assert bob is not None
    assert [r.name for r in store.list_rooms(bob.id)] == ["general"]
    assert store.room_members(store.room_id("ops")) == [  # type: ignore[arg-type]
        RoomMemberRecord(store.get_account("alice").id, "alice", "owner")  # type: ignore[union-attr]
    ]
