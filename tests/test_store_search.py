"""Store.search and its query parser, on SQLite (FTS5) and PostgreSQL (tsvector)."""

import pytest
from sqlalchemy import update

from chatsecure.storage.db import database_files
from chatsecure.storage.models import Message
from chatsecure.storage.search import MAX_TERMS, fts5_match, parse_terms
from chatsecure.storage.store import NewMessage, Store


@pytest.fixture
def people(store: Store) -> dict[str, int]:
    store.create_accounts([("alice", "h"), ("bob", "h"), ("carol", "h")], ["dev"])
    store.create_room("ops")
    return {a.name: a.id for a in store.list_accounts()}


def _say(store: Store, sender: str, text: str, room: str = "dev") -> int:
    sender_id = store.get_account(sender).id  # type: ignore[union-attr]
    message = NewMessage(sender_id, sender, text, room_id=store.room_id(room), room_name=room)
    return store.insert_messages([message])[0].id


def _dm(store: Store, sender: str, recipient: str, text: str) -> int:
    ids = {a.name: a.id for a in store.list_accounts()}
    message = NewMessage(
        ids[sender], sender, text, recipient_id=ids[recipient], recipient_name=recipient
    )
    return store.insert_messages([message])[0].id


def _ids(store: Store, account_id: int, q: str, **kwargs: object) -> list[int]:
    found, _more = store.search(account_id, q, **kwargs)  # type: ignore[arg-type]
    return [m.id for m in found]


def test_terms_are_words_and_quoted_phrases():
    assert parse_terms('deploy "on friday"  now') == ["deploy", "on friday", "now"]
    assert parse_terms('"unclosed  phrase') == ["unclosed phrase"]
    assert parse_terms('   "" !!! -- ') == []
    assert len(parse_terms(" ".join(f"w{i}" for i in range(40)))) == MAX_TERMS


def test_the_match_string_is_quoted_strings_only():
    assert fts5_match(["a", 'say "hi" OR x*']) == '"a" AND "say ""hi"" OR x*"'


def test_case_and_accents_do_not_matter(store, people):
    cafe = _say(store, "alice", "Meet at the Café")
    naive = _say(store, "bob", "a NAIVE plan")
    assert _ids(store, people["alice"], "cafe") == [cafe]
    assert _ids(store, people["alice"], "CAFÉ") == [cafe]
    assert _ids(store, people["alice"], "naïve") == [naive]
    decomposed = _say(store, "alice", "Cafe\u0301 again")  # e and a combining accent
    assert _ids(store, people["alice"], "café") == [decomposed, cafe]
    assert _ids(store, people["alice"], "cafe\u0301") == [decomposed, cafe]


def test_whole_words_only(store, people):
    cat = _say(store, "alice", "the cat sat")
    _say(store, "alice", "a category of things")
    assert _ids(store, people["bob"], "cat") == [cat]
    assert _ids(store, people["bob"], "categ") == []


def test_every_word_is_required_and_phrases_keep_their_order(store, people):
    both = _say(store, "alice", "deploy on friday evening")
    _say(store, "alice", "deploy today")
    reversed_ = _say(store, "alice", "friday we deploy")
    assert _ids(store, people["bob"], "deploy friday") == [reversed_, both]
    assert _ids(store, people["bob"], '"deploy on friday"') == [both]
    assert _ids(store, people["bob"], '"friday deploy"') == []
    assert _ids(store, people["bob"], "deploy nothinglikethis") == []


def test_query_syntax_in_the_text_is_only_words(store, people):
    plain = _say(store, "alice", "x OR y NEAR z")
    assert _ids(store, people["bob"], "OR") == [plain]
    assert _ids(store, people["bob"], 'x* ^y "z') == [plain]
    assert _ids(store, people["bob"], "NOT x") == []  # "not" is a word it lacks
    assert _ids(store, people["bob"], "') OR 1=1 --") == []


def test_a_query_without_words_finds_nothing(store, people):
    _say(store, "alice", "anything")
    assert store.search(people["bob"], '  "" ?! ') == ([], False)


def test_deleted_messages_never_match_and_edits_match_their_new_text(store, people):
    gone = _say(store, "alice", "secret plan")
    edited = _say(store, "alice", "old wording")
    assert store.delete_message(gone, by="alice", origin="n")
    assert store.edit_message(edited, "new wording", edited_ms=1, by="alice", origin="n")
    assert _ids(store, people["bob"], "secret") == []
    assert _ids(store, people["bob"], "old") == []
    assert _ids(store, people["bob"], "new") == [edited]
    found, _ = store.search(people["bob"], "wording")
    assert [(m.text, m.edited_ms) for m in found] == [("new wording", 1)]


def test_purged_and_erased_messages_drop_out(store, people):
    old = _say(store, "alice", "quarterly report")
    by_carol = _say(store, "carol", "report from carol")
    kept = _say(store, "bob", "the report")
    with store.writing() as s, s.begin():
        s.execute(update(Message).where(Message.id == old).values(ts_ms=1))
    assert store.purge_messages(1000) == 1
    store.delete_account("carol", erase=True)
    assert _ids(store, people["bob"], "report") == [kept]
    assert by_carol not in _ids(store, people["alice"], "report")


def test_only_rooms_the_account_is_in_now_and_its_own_direct_chats(store, people):
    in_dev = _say(store, "alice", "lunch in dev")
    in_ops = _say(store, "alice", "lunch in ops", room="ops")
    to_bob = _dm(store, "alice", "bob", "lunch for bob")
    to_carol = _dm(store, "alice", "carol", "lunch for carol")
    assert _ids(store, people["bob"], "lunch") == [to_bob, in_dev]
    assert _ids(store, people["carol"], "lunch") == [to_carol, in_dev]
    assert _ids(store, people["alice"], "lunch") == [to_carol, to_bob, in_dev]
    store.join_room(people["bob"], "ops", create=False)
    assert _ids(store, people["bob"], "lunch") == [to_bob, in_ops, in_dev]
    store.leave_room(people["bob"], store.room_id("dev"))
    assert _ids(store, people["bob"], "lunch") == [to_bob, in_ops]


def test_one_room_or_one_direct_conversation(store, people):
    in_dev = _say(store, "alice", "lunch in dev")
    in_ops = _say(store, "alice", "lunch in ops", room="ops")
    to_bob = _dm(store, "alice", "bob", "lunch for bob")
    _dm(store, "alice", "carol", "lunch for carol")
    dev, ops = store.room_id("dev"), store.room_id("ops")
    assert _ids(store, people["bob"], "lunch", room_id=dev) == [in_dev]
    assert _ids(store, people["bob"], "lunch", room_id=ops) == []  # not a member
    assert _ids(store, people["bob"], "lunch", peer_id=people["alice"]) == [to_bob]
    assert _ids(store, people["alice"], "lunch", peer_id=people["bob"]) == [to_bob]
    assert _ids(store, people["bob"], "lunch", peer_id=people["carol"]) == []
    store.join_room(people["bob"], "ops", create=False)
    assert _ids(store, people["bob"], "lunch", room_id=ops) == [in_ops]


def test_results_are_whole_messages(store, people):
    message_id = _say(store, "alice", "hello dev")
    dm_id = _dm(store, "alice", "bob", "hello bob")
    found, more = store.search(people["bob"], "hello")
    assert not more
    assert [(m.id, m.sender, m.text, m.room, m.to, m.deleted) for m in found] == [
        (dm_id, "alice", "hello bob", None, "bob", False),
        (message_id, "alice", "hello dev", "dev", None, False),
    ]
    assert found[0] == store.message(dm_id)


def test_pages_go_back_with_before_and_say_more(store, people):
    ids = [_say(store, "alice", f"standup note {i}") for i in range(7)]
    _say(store, "alice", "unrelated")
    page, more = store.search(people["bob"], "standup", limit=3)
    assert [m.id for m in page] == ids[::-1][:3]
    assert more
    page, more = store.search(people["bob"], "standup", limit=3, before=page[-1].id)
    assert [m.id for m in page] == ids[::-1][3:6]
    assert more
    page, more = store.search(people["bob"], "standup", limit=3, before=page[-1].id)
    assert [m.id for m in page] == [ids[0]]
    assert not more
    assert store.search(people["bob"], "standup", limit=7) == (
        [store.message(i) for i in reversed(ids)],
        False,
    )


def _file_holds(store: Store, word: bytes) -> bool:
    """Whether the SQLite database file holds these bytes anywhere, free pages too."""
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return any(word in path.read_bytes() for path in database_files(store.engine.url))


# SQLite only: PostgreSQL's index entries go with VACUUM, as the text does.
@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_compacting_drops_the_words_deleted_messages_left_in_the_index(store, people):
    for i in range(300):  # the word's entry in an older segment than its tombstone
        _say(store, "bob", f"filler {i}")
    gone = _say(store, "alice", "xylophonequartz")
    for i in range(300):
        _say(store, "bob", f"more filler {i}")
    store.delete_message(gone, by="alice", origin="n")
    assert _ids(store, people["bob"], "xylophonequartz") == []
    store.compact_search_index()
    assert not _file_holds(store, b"xylophonequartz")
    assert len(_ids(store, people["bob"], "filler")) == 20


# SQLite only: PostgreSQL's index entries go with VACUUM, as the text does.
@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_an_erasure_leaves_no_word_in_the_index(store, people):
    _say(store, "carol", "zanzibarquokka")
    for i in range(300):
        _say(store, "bob", f"filler {i}")
    store.delete_account("carol", erase=True)
    assert not _file_holds(store, b"zanzibarquokka")


def test_a_page_of_long_messages_ends_early_with_more(store, people):
    long_ids = [_say(store, "alice", "needle " + "x" * 3990) for _ in range(20)]
    page, more = store.search(people["bob"], "needle", limit=20)
    assert more
    assert [m.id for m in page] == long_ids[::-1][: len(page)]
    assert 0 < len(page) < 20
