from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from chatsecure.storage.db import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    migrations_dir,
    schema_problem,
    upgrade,
)
from chatsecure.storage.models import Base
from chatsecure.storage.search import include_in_models


def _compare(engine: Engine) -> Any:
    with engine.connect() as connection:
        opts = {"compare_type": True, "include_name": include_in_models}
        context = MigrationContext.configure(connection, opts=opts)
        return compare_metadata(context, Base.metadata)


def test_models_and_migrations_agree(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    assert _compare(engine) == []
    engine.dispose()


def test_a_missing_sqlite_file_is_reported_and_not_made(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert "there is no database" in (schema_problem(engine) or "")
    assert not (tmp_path / "db.sqlite").exists()  # asking did not create it
    engine.dispose()


def test_upgrade_downgrade_upgrade(database_url):
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    assert "is at schema (empty)" in (schema_problem(engine) or "")
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert schema_problem(engine) is None
    assert current_revision(engine) == head_revision()
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert schema_problem(engine) is None
    assert {"accounts", "rooms", "memberships", "messages", "direct_peers"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_migrations_are_found_for_the_package():
    assert (migrations_dir() / "env.py").is_file()


def test_0005_makes_room_creators_owners_and_downgrades(database_url):
    engine = make_engine(database_url)
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, name_key, password_hash, created_at, disabled,"
                " failed_logins, credential_generation) VALUES"
                " (1, 'alice', 'alice', 'h', '2026-01-01', false, 0, 0),"
                " (2, 'bob', 'bob', 'h', '2026-01-01', false, 0, 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO rooms (id, name, created_at, created_by)"
                " VALUES (1, 'dev', '2026-01-01', 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO memberships (account_id, room_id, joined_at) VALUES"
                " (1, 1, '2026-01-01'), (2, 1, '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO messages (ts_ms, room_id, sender_id, sender_name, text)"
                " VALUES (5, 1, 1, 'alice', 'hi')"
            )
        )
    upgrade(engine, "0005")
    with engine.connect() as conn:
        roles = conn.execute(
            text("SELECT account_id, role, read_up_to FROM memberships ORDER BY account_id")
        ).all()
        room = conn.execute(text("SELECT private, topic FROM rooms")).one()
        message = conn.execute(text("SELECT edited_ms, deleted FROM messages")).one()
        admin = conn.execute(text("SELECT is_admin FROM accounts WHERE id = 1")).scalar_one()
    assert [tuple(r) for r in roles] == [(1, "owner", 0), (2, "member", 0)]
    assert (bool(room.private), room.topic) == (False, "")
    assert (message.edited_ms, bool(message.deleted)) == (None, False)
    assert not admin
    downgrade(engine, "0004")
    tables = set(inspect(engine).get_table_names())
    assert not {"room_events", "room_invites", "room_bans"} & tables
    assert "role" not in {c["name"] for c in inspect(engine).get_columns("memberships")}
    # Neither way lost a row (a copied-and-dropped table would cascade on SQLite).
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM memberships")).scalar_one() == 2
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == 1
    upgrade(engine)
    assert _compare(engine) == []
    engine.dispose()


def test_upgrading_from_0001_keeps_every_row(tmp_path):
    """Batch mode copies and drops tables on SQLite: no drop may cascade to the data."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, name_key, password_hash, created_at, disabled,"
                " failed_logins) VALUES (1, 'alice', 'alice', 'x', '2026-01-01', 0, 0)"
            )
        )
        conn.execute(
            text("INSERT INTO rooms (id, name, created_at) VALUES (1, 'dev', '2026-01-01')")
        )
        conn.execute(
            text(
                "INSERT INTO memberships (account_id, room_id, joined_at)"
                " VALUES (1, 1, '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO messages (id, ts_ms, room_id, sender_id, sender_name, text)"
                " VALUES (1, 1, 1, 1, 'alice', 'kept')"
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM memberships")).scalar_one() == 1
        assert conn.execute(text("SELECT text FROM messages")).scalar_one() == "kept"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    engine.dispose()


def _search_objects(engine: Engine) -> set[str]:
    """The search index's tables, triggers, functions and indexes that exist."""
    if engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'"
    else:
        query = (
            "SELECT proname FROM pg_proc WHERE proname LIKE 'chatsecure_search%'"
            " UNION ALL SELECT indexname FROM pg_indexes WHERE indexname = 'ix_messages_search'"
            " UNION ALL SELECT extname FROM pg_extension WHERE extname = 'unaccent'"
            " UNION ALL SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'messages' AND column_name = 'search_vector'"
        )
    with engine.connect() as conn:
        return set(conn.execute(text(query)).scalars())


def test_0006_indexes_the_messages_there_and_downgrades(database_url):
    engine = make_engine(database_url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rooms (id, name, created_at, private, topic)"
                " VALUES (1, 'dev', '2026-01-01', false, '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO messages (ts_ms, room_id, sender_name, text, deleted)"
                " VALUES (5, 1, 'alice', 'Déjà vu', false)"
            )
        )
    assert _search_objects(engine) == set()
    upgrade(engine, "0006")
    if engine.dialect.name == "sqlite":
        assert {
            "messages_fts",
            "messages_fts_insert",
            "messages_fts_update",
            "messages_fts_delete",
        } <= _search_objects(engine)
        found = "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'deja'"
    else:
        assert _search_objects(engine) == {
            "chatsecure_search_vector",
            "chatsecure_search_phrase",
            "ix_messages_search",
            "unaccent",
            "search_vector",
        }
        found = "SELECT id FROM messages WHERE search_vector @@ chatsecure_search_phrase('deja')"
    with engine.connect() as conn:
        assert conn.execute(text(found)).scalars().all() == [1]
    downgrade(engine, "0005")
    assert _search_objects(engine) == set()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT text FROM messages")).scalar_one() == "Déjà vu"
    upgrade(engine)
    assert _compare(engine) == []
    engine.dispose()


def test_the_search_index_follows_the_messages_at_head(database_url):
    """A later migration that copies the messages table (a batch on SQLite) would drop
    the triggers that keep the index, and search would quietly go stale."""
    engine = make_engine(database_url)
    upgrade(engine)
    if engine.dialect.name == "sqlite":
        found = "SELECT rowid FROM messages_fts WHERE messages_fts MATCH :word"
    else:
        found = "SELECT id FROM messages WHERE search_vector @@ chatsecure_search_phrase(:word)"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rooms (id, name, created_at, private, topic)"
                " VALUES (1, 'dev', '2026-01-01', false, '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO messages (id, ts_ms, room_id, sender_name, text, deleted)"
                " VALUES (1, 5, 1, 'alice', 'first words', false)"
            )
        )
        assert conn.execute(text(found), {"word": "first"}).scalars().all() == [1]
        conn.execute(text("UPDATE messages SET text = 'second words' WHERE id = 1"))
        assert conn.execute(text(found), {"word": "first"}).scalars().all() == []
        assert conn.execute(text(found), {"word": "second"}).scalars().all() == [1]
        conn.execute(text("DELETE FROM messages"))
        assert conn.execute(text(found), {"word": "words"}).scalars().all() == []
    engine.dispose()


def test_0007_adds_files_keeping_messages_and_their_triggers(database_url):
    engine = make_engine(database_url)
    sqlite = engine.dialect.name == "sqlite"
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, name_key, password_hash, created_at, disabled,"
                " failed_logins, credential_generation) VALUES"
                " (1, 'alice', 'alice', 'h', '2026-01-01', false, 0, 0)"
            )
        )
        conn.execute(
            text("INSERT INTO rooms (id, name, created_at) VALUES (1, 'dev', '2026-01-01')")
        )
        conn.execute(
            text(
                "INSERT INTO messages (id, ts_ms, room_id, sender_id, sender_name, text)"
                " VALUES (7, 5, 1, 1, 'alice', 'hi')"
            )
        )
        if sqlite:  # a later revision may index messages by trigger; the copy must keep it
            conn.execute(text("CREATE TABLE seen (id INTEGER)"))
            conn.execute(
                text(
                    "CREATE TRIGGER messages_seen AFTER INSERT ON messages"
                    " BEGIN INSERT INTO seen VALUES (new.id); END"
                )
            )
    upgrade(engine, "0007")
    columns = {c["name"] for c in inspect(engine).get_columns("messages")}
    assert "file_id" in columns
    with engine.begin() as conn:
        assert conn.execute(text("SELECT id, text, file_id FROM messages")).one() == (7, "hi", None)
        conn.execute(
            text(
                "INSERT INTO files (id, sha256, size, name, mime, account_id, created_ms)"
                " VALUES ('f1', :sha, 3, 'a.txt', 'text/plain', 1, 9)"
            ),
            {"sha": "a" * 64},
        )
        conn.execute(
            text(
                "INSERT INTO messages (id, ts_ms, room_id, sender_id, sender_name, text, file_id)"
                " VALUES (8, 6, 1, 1, 'alice', 'a.txt', 'f1')"
            )
        )
        if sqlite:
            assert conn.execute(text("SELECT id FROM seen")).scalars().all() == [8]
    downgrade(engine, "0005")
    assert "files" not in inspect(engine).get_table_names()
    assert "file_id" not in {c["name"] for c in inspect(engine).get_columns("messages")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar_one() == 2
        if sqlite:
            triggers = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
            assert conn.execute(text(triggers)).scalar_one() == 1
    if sqlite:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER messages_seen"))
            conn.execute(text("DROP TABLE seen"))
    upgrade(engine)
    assert _compare(engine) == []
    engine.dispose()


def test_0008_bans_remember_whether_they_were_told_and_downgrades(database_url):
    engine = make_engine(database_url)
    upgrade(engine, "0007")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, name_key, password_hash, created_at, disabled,"
                " failed_logins, credential_generation, is_admin) VALUES"
                " (1, 'alice', 'alice', 'h', '2026-01-01', false, 0, 0, false),"
                " (2, 'bob', 'bob', 'h', '2026-01-01', false, 0, 0, false)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO rooms (id, name, created_at, private, topic)"
                " VALUES (1, 'ops', '2026-01-01', true, '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO room_bans (room_id, account_id, by_name, reason, at)"
                " VALUES (1, 1, 'root', 'old', '2026-01-01')"
            )
        )
    upgrade(engine, "0008")
    with engine.begin() as conn:
        # A ban from before was told (the server then sent `kicked` for every ban).
        assert conn.execute(text("SELECT disclosed FROM room_bans")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO room_bans (room_id, account_id, by_name, reason, at, disclosed)"
                " VALUES (1, 2, 'root', 'new', '2026-01-02', false)"
            )
        )
    downgrade(engine, "0007")
    assert "disclosed" not in {c["name"] for c in inspect(engine).get_columns("room_bans")}
    with engine.connect() as conn:
        reasons = conn.execute(text("SELECT reason FROM room_bans ORDER BY account_id"))
        assert reasons.scalars().all() == ["old", "new"]
    upgrade(engine)
    assert _compare(engine) == []
    engine.dispose()
