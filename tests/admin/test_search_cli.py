"""``chatsecure-admin search``: what it prints, newest first, with the user's access rules,
and how it refuses."""

import pytest

from chatsecure.storage.db import database_files
from chatsecure.storage.store import NewMessage
from tests.admin.test_cli import PASSWORD, _store


@pytest.fixture
def people(migrated):
    for name in ("alice", "bob", "carol"):
        assert migrated("adduser", name, "--password-stdin", stdin=PASSWORD).code == 0
    for room in ("dev", "ops"):
        assert migrated("addroom", room).code == 0
    store = _store(migrated)
    ids = {a.name: a.id for a in store.list_accounts()}
    for name in ("alice", "bob"):
        store.join_room(ids[name], "dev", create=False)
    store.join_room(ids["carol"], "ops", create=False)

    def say(sender: str, text: str, room: str | None = None, to: str | None = None) -> int:
        message = NewMessage(
            ids[sender],
            sender,
            text,
            room_id=store.room_id(room) if room else None,
            room_name=room,
            recipient_id=ids[to] if to else None,
            recipient_name=to,
        )
        return store.insert_messages([message])[0].id

    migrated.say = say
    return migrated


def _lines(result) -> list[str]:
    assert result.code == 0, result.err
    return list(result.out.splitlines())


def _refused(result, problem: str) -> None:
    assert result.code != 0
    assert result.err.startswith("chatsecure-admin: error: ")
    assert problem in result.err
    assert "Traceback" not in result.err


def test_results_newest_first_with_room_or_peer(people):
    in_dev = people.say("alice", "Deploy on Friday", room="dev")
    to_bob = people.say("bob", "deploy\nfriday?", to="alice")
    people.say("carol", "deploy friday in ops", room="ops")
    lines = _lines(people("search", "--user", "ALICE", "deploy", "friday"))
    assert len(lines) == 3
    assert lines[0].startswith(f"{to_bob}  ")
    assert lines[0].endswith("  ->bob  bob: deploy")
    assert lines[1] == "    friday?"
    assert lines[2].startswith(f"{in_dev}  20")
    assert lines[2].endswith("Z  #dev  alice: Deploy on Friday")
    mine = _lines(people("search", "--user", "bob", "deploy"))
    assert mine[0].endswith("  ->alice  bob: deploy")


def test_one_room_one_peer_phrases_and_paging(people):
    ids = [people.say("alice", f"standup {i}", room="dev") for i in range(3)]
    people.say("alice", "standup for bob", to="bob")
    in_dev = people("search", "--user", "bob", "--room", "DEV", "standup")
    assert [line.split()[0] for line in _lines(in_dev)] == [str(i) for i in ids[::-1]]
    with_alice = _lines(people("search", "--user", "bob", "--with", "alice", "standup"))
    assert len(with_alice) == 1
    assert with_alice[0].endswith("->alice  alice: standup for bob")
    page = people("search", "--user", "bob", "--room", "dev", "--limit", "2", "standup")
    assert len(_lines(page)) == 2
    assert f"--before {ids[1]}" in page.err
    rest = people("search", "--user", "bob", "--room", "dev", "--before", str(ids[1]), "standup")
    assert [line.split()[0] for line in _lines(rest)] == [str(ids[0])]
    assert len(_lines(people("search", "--user", "bob", '"for bob"'))) == 1
    assert _lines(people("search", "--user", "bob", '"bob for"')) == []


def test_only_what_the_user_may_read(people):
    people.say("carol", "secret ops plan", room="ops")
    people.say("carol", "secret for alice", to="alice")
    result = people("search", "--user", "bob", "secret")
    assert _lines(result) == []
    assert "no messages match" in result.err
    _refused(people("search", "--user", "bob", "--room", "ops", "secret"), "not a member of #ops")
    assert _lines(people("search", "--user", "bob", "--with", "carol", "secret")) == []


def test_refusals(people):
    _refused(people("search", "--user", "nobody", "x"), "no account named 'nobody'")
    _refused(people("search", "--user", "bob", "--room", "nowhere", "x"), "no room named")
    _refused(people("search", "--user", "bob", "--with", "nobody", "x"), "no account named")
    _refused(people("search", "--user", "bob", '""', "?!"), "no word to search for")
    _refused(people("search", "--user", "bob", "x" * 201), "at most 200 characters")
    _refused(people("search", "--user", "bob", "--limit", "101", "x"), "--limit: at most 100")
    usage = people("search", "--user", "bob", "--limit", "0", "x")
    assert usage.code == 2
    assert "whole number above 0" in usage.err
    both = people("search", "--user", "bob", "--room", "dev", "--with", "alice", "x")
    assert both.code == 2
    assert people("search", "--user", "bob").code == 2  # no words


def test_purge_leaves_no_word_in_the_search_index(people):
    people.say("alice", "quokkaxylophone", room="dev")
    for i in range(300):
        people.say("bob", f"filler {i}", room="dev")
    assert people("purge", "--before", "2100-01-01", "--yes").code == 0
    store = _store(people)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert all(b"quokkaxylophone" not in p.read_bytes() for p in database_files(store.engine.url))
