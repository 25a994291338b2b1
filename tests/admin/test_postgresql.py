"""The admin commands against a real PostgreSQL: migrate, accounts, rooms, export."""

import json

import pytest

from chatsecure.config import load_settings
from chatsecure.storage.db import make_engine
from chatsecure.storage.store import NewMessage, Store

PASSWORD = "correct horse battery"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_admin_commands_on_postgresql(database_url, write_config, tmp_path, admin_for):
    admin = admin_for(write_config(tmp_path, database={"url": database_url}))
    assert "chatsecure-admin migrate" in admin("users").err
    assert "upgraded from (empty) to" in admin("migrate").out
    assert "already at the current schema" in admin("migrate").out

    for name in ("alice", "Bob"):
        result = admin("adduser", name, "--password-stdin", stdin=PASSWORD)
        assert result.code == 0, result.err
    assert "already exists" in admin("adduser", "BOB", "--password-stdin", stdin=PASSWORD).err
    assert admin("disable", "bob").code == 0
    table = [line.split() for line in admin("users").out.splitlines()[1:]]
    assert [(row[0], row[-1]) for row in table] == [("alice", "active"), ("Bob", "disabled")]
    assert admin("addroom", "dev").code == 0
    rooms = [line.split() for line in admin("rooms").out.splitlines()[1:]]
    assert rooms == [["dev", "0"], ["general", "2"]]

    store = Store(make_engine(load_settings(admin.config).database.url))
    alice, bob = (a.id for a in store.list_accounts())
    general = store.room_id("general")
    store.insert_messages(
        [
            NewMessage(alice, "alice", "hello", room_id=general, room_name="general"),
            NewMessage(alice, "alice", "psst", recipient_id=bob, recipient_name="Bob"),
        ]
    )
    store.close()
    exported = admin("export", "--room", "general", "--format", "jsonl")
    assert exported.code == 0, exported.err
    assert [json.loads(line)["text"] for line in exported.out.splitlines()] == ["hello"]
    seen_by_bob = admin("export", "--user", "bob", "--format", "jsonl")
    assert [json.loads(line)["text"] for line in seen_by_bob.out.splitlines()] == [
        "hello",
        "psst",
    ]
    assert admin("deluser", "alice", "--yes").code == 0
    assert [line.split()[0] for line in admin("users").out.splitlines()[1:]] == ["Bob"]
