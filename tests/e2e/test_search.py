"""Search (the contract's ``search``), by a client that knows only the contract: whole
words, case and accents folded, phrases, newest first with paging, and only what the
searcher may read."""

from __future__ import annotations

from typing import Any

from tests.e2e.client import ChatClient, Frame
from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import assert_error, send_direct, send_room


def search(client: ChatClient, q: str, **fields: Any) -> Frame:
    reply = client.request({"type": "search", "q": q, **fields})
    assert reply["type"] == "search", reply
    return reply


def ids(reply: Frame) -> list[int]:
    return [m["id"] for m in reply["results"]]


def test_words_match_whole_folded_and_all_required(server: ServerProcess) -> None:
    alice, bob = server.new_users(2)
    a = server.member(alice, "s-words")
    b = server.member(bob, "s-words")
    assert "search" in a.hello["features"]  # type: ignore[index]
    cafe = send_room(a, "s-words", "Meet at the CAFÉ on Friday")
    cat = send_room(a, "s-words", "the category is wrong")
    both = send_room(b, "s-words", "friday deploy, then cafe")
    send_room(b, "s-words", "nothing to see")
    assert ids(search(b, "cafe")) == [both, cafe]
    assert ids(search(b, "Café friday")) == [both, cafe]
    assert ids(search(b, "cafe deploy")) == [both]
    assert ids(search(b, "cat")) == []
    assert ids(search(b, "category")) == [cat]
    assert ids(search(b, '"friday deploy"')) == [both]
    assert ids(search(b, '"deploy friday"')) == []
    assert ids(search(b, "!!!")) == []
    [found] = search(b, "deploy")["results"]
    assert found["room"] == "s-words"
    assert found["from"] == bob
    assert found["text"] == "friday deploy, then cafe"


def test_results_page_newest_first(server: ServerProcess) -> None:
    alice = server.new_user()
    a = server.member(alice, "s-paging")
    sent = [send_room(a, "s-paging", f"s-paging marker {n}") for n in range(7)]
    first = search(a, "marker", room="s-paging", limit=3)
    assert ids(first) == sent[-1:-4:-1]
    assert first["more"] is True
    second = search(a, "marker", room="s-paging", limit=3, before=ids(first)[-1])
    assert ids(second) == sent[-4:-7:-1]
    last = search(a, "marker", room="s-paging", limit=3, before=ids(second)[-1])
    assert ids(last) == [sent[0]]
    assert last["more"] is False


def test_only_what_the_searcher_may_read(server: ServerProcess) -> None:
    alice, bob, eve = server.new_users(3)
    a = server.member(alice, "s-open")
    e = server.member(eve, "s-open")
    assert a.request({"type": "create", "room": "s-secret", "private": True})["type"] == "joined"
    hidden = send_room(a, "s-secret", "zebra in the private room")
    dm = send_direct(a, bob, "zebra for bob")
    shown = send_room(a, "s-open", "zebra in the open")
    assert ids(search(e, "zebra")) == [shown]
    assert ids(search(a, "zebra")) == [shown, dm, hidden]
    b = server.login(bob)
    assert ids(search(b, "zebra")) == [dm]
    assert ids(search(b, "zebra", **{"with": alice})) == [dm]
    assert ids(search(e, "zebra", **{"with": alice})) == []
    missing = assert_error(
        e.request({"type": "search", "q": "x", "room": "s-secret"}), "no_such_room"
    )
    nowhere = assert_error(
        e.request({"type": "search", "q": "x", "room": "s-none"}), "no_such_room"
    )
    assert missing["message"].replace("s-secret", "") == nowhere["message"].replace("s-none", "")
    assert_error(b.request({"type": "search", "q": "x", "room": "s-open"}), "not_member")
    # Leaving a room ends searching it.
    assert e.request({"type": "leave", "room": "s-open"})["type"] == "ok"
    assert ids(search(e, "zebra")) == []


def test_deleted_never_match_and_edits_match_their_new_text(server: ServerProcess) -> None:
    alice = server.new_user()
    a = server.member(alice, "s-edits")
    gone = send_room(a, "s-edits", "s-edits walrus")
    fixed = send_room(a, "s-edits", "s-edits teh typo")
    assert a.request({"type": "delete", "id": gone})["type"] == "ok"
    assert a.request({"type": "edit", "id": fixed, "text": "s-edits the fix"})["type"] == "ok"
    assert ids(search(a, "walrus")) == []
    assert ids(search(a, "teh")) == []
    [found] = search(a, "fix", room="s-edits")["results"]
    assert found["id"] == fixed
    assert found["text"] == "s-edits the fix"
    assert "edited_ts" in found


def test_bad_searches_are_bad_requests(server: ServerProcess) -> None:
    a = server.login(server.new_user())
    frames: list[dict[str, object]] = [
        {"type": "search"},
        {"type": "search", "q": ""},
        {"type": "search", "q": "x" * 201},
        {"type": "search", "q": "x", "limit": 101},
        {"type": "search", "q": "x", "room": "a", "with": "b"},
    ]
    for frame in frames:
        assert_error(a.request(frame), "bad_request")
