"""CHATHISTORY (IRCv3 draft/chathistory): the request parser alone, then the adapter over
the real chat service in memory, subcommand by subcommand as the spec words them.

Message times are set by the test (one second apart), so ``timestamp=`` references name
one message each; no test measures time.
"""

from __future__ import annotations

import itertools

import pytest

from chatsecure.protocol import Ok, Send
from chatsecure.server.core.results import InRoom, WithUser
from chatsecure.server.irc.chathistory import (
    MAX_LIMIT,
    HistoryQuery,
    Invalid,
    TargetsQuery,
    parse_chathistory,
)
from chatsecure.storage import store as store_module
from chatsecure.storage.store import At, Store
from chatsecure.timestamps import parse_date

HISTORY_CAPS = "sasl batch server-time message-tags labeled-response draft/chathistory"
START_MS = parse_date("2026-11-21T10:00:00.000Z")
NEVER = "timestamp=2000-01-01T00:00:00.000Z"
FOREVER = "timestamp=2200-01-01T00:00:00.000Z"


# -- the parser ------------------------------------------------------------------------


def test_parse_reads_each_subcommand_with_its_references_and_caps_the_limit():
    assert parse_chathistory(["latest", "#General", "*", "10"]) == HistoryQuery(
        "LATEST", "#General", InRoom("general"), None, None, 10
    )
    assert parse_chathistory(["BEFORE", "bob", "msgid=42", "9999"]) == HistoryQuery(
        "BEFORE", "bob", WithUser("bob"), 42, None, MAX_LIMIT
    )
    between = parse_chathistory(
        ["BETWEEN", "#dev", "msgid=7", "timestamp=2026-11-21T10:00:00.000Z", "5"]
    )
    assert between == HistoryQuery("BETWEEN", "#dev", InRoom("dev"), 7, At(START_MS), 5)
    assert parse_chathistory(["TARGETS", NEVER, FOREVER, "3"]) == TargetsQuery(
        parse_date(NEVER[10:]), parse_date(FOREVER[10:]), 3
    )


@pytest.mark.parametrize(
    ("params", "code", "context"),
    [
        (["FETCH", "#a", "*", "1"], "INVALID_PARAMS", ("FETCH",)),
        (["LATEST", "#a", "*"], "INVALID_PARAMS", ("LATEST",)),
        (["AROUND", "#a", "msgid=1", "2", "3"], "INVALID_PARAMS", ("AROUND",)),
        (["LATEST", "#a", "*", "0"], "INVALID_PARAMS", ("LATEST", "0")),
        (["BEFORE", "#a", "*", "5"], "INVALID_PARAMS", ("BEFORE", "*")),
        (["AFTER", "#a", "msgid=x", "5"], "INVALID_PARAMS", ("AFTER", "msgid=x")),
        (["AFTER", "#a", "timestamp=soon", "5"], "INVALID_PARAMS", ("AFTER", "timestamp=soon")),
        (["AFTER", "#a", "seq=5", "5"], "INVALID_MSGREFTYPE", ("AFTER", "#a")),
        (["LATEST", "#Bad!", "*", "5"], "INVALID_TARGET", ("LATEST", "#Bad!")),
        (["TARGETS", "msgid=1", FOREVER, "5"], "INVALID_PARAMS", ("TARGETS", "msgid=1")),
    ],
)
def test_parse_answers_a_bad_request_with_the_spec_fail_code(params, code, context):
    invalid = parse_chathistory(params)
    assert isinstance(invalid, Invalid)
    assert (invalid.code, invalid.params[:-1]) == (code, context)


# -- the adapter -----------------------------------------------------------------------


@pytest.fixture
def ticking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each stored batch (here: each message) one second after the one before."""
    seconds = itertools.count()
    monkeypatch.setattr(store_module, "now_ms", lambda: START_MS + 1000 * next(seconds))


@pytest.fixture
def room_messages(ticking, login) -> list[Ok]:
    """bob's m0..m9 in #general, a second apart: their ids and times."""
    bob = login("bob")
    sent = []
    for i in range(10):
        bob.send(Send(room="general", text=f"m{i}", req=i))
        sent.append(bob.outbox.next(Ok, req=i))
    return sent


def texts(client, line: str, target: str = "#general") -> list[str]:
    """Send a CHATHISTORY line; the texts of the chathistory batch that answers it."""
    client.send(line)
    start = client.next("BATCH")
    assert start.params[1:] == ("chathistory", target)
    inner = client.link.until("BATCH", params=(f"-{start.params[0][1:]}",))
    assert all(m.tags.get("batch") == start.params[0][1:] for m in inner[:-1])
    return [m.params[1] for m in inner if m.command == "PRIVMSG"]


def m(*indexes: int) -> list[str]:
    return [f"m{i}" for i in indexes]


def test_a_chathistory_client_gets_no_replay_and_reads_latest(room_messages, irc_login):
    alice = irc_login("alice", caps=HISTORY_CAPS)
    alice.next("366")
    assert texts(alice, "CHATHISTORY LATEST #general * 3") == m(7, 8, 9)
    assert texts(alice, f"CHATHISTORY LATEST #general msgid={room_messages[4].id} 100") == m(
        5, 6, 7, 8, 9
    )
    assert texts(alice, f"CHATHISTORY LATEST #general timestamp={room_messages[6].ts} 2") == m(8, 9)


def test_before_and_after_by_msgid_and_by_timestamp(room_messages, irc_login):
    sent = room_messages
    alice = irc_login("alice", caps=HISTORY_CAPS)
    assert texts(alice, f"CHATHISTORY BEFORE #general msgid={sent[6].id} 100") == m(*range(6))
    assert texts(alice, f"CHATHISTORY BEFORE #general timestamp={sent[6].ts} 2") == m(4, 5)
    assert texts(alice, f"CHATHISTORY AFTER #general msgid={sent[3].id} 100") == m(*range(4, 10))
    assert texts(alice, f"CHATHISTORY AFTER #general timestamp={sent[3].ts} 3") == m(4, 5, 6)


def test_between_counts_from_the_first_reference_either_way(room_messages, irc_login):
    first, last = room_messages[0], room_messages[-1]
    alice = irc_login("alice", caps=HISTORY_CAPS)
    forward = f"CHATHISTORY BETWEEN #general msgid={first.id} msgid={last.id}"
    backward = f"CHATHISTORY BETWEEN #general msgid={last.id} msgid={first.id}"
    assert texts(alice, f"{forward} 100") == m(*range(1, 9))
    assert texts(alice, f"{backward} 100") == m(*range(1, 9))
    assert texts(alice, f"{forward} 3") == m(1, 2, 3)
    assert texts(alice, f"{backward} 3") == m(6, 7, 8)
    by_time = f"CHATHISTORY BETWEEN #general timestamp={last.ts} timestamp={first.ts} 3"
    assert texts(alice, by_time) == m(6, 7, 8)
    mixed = f"CHATHISTORY BETWEEN #general timestamp={last.ts} msgid={first.id} 2"
    assert texts(alice, mixed) == m(7, 8)


def test_around_includes_the_message_named(room_messages, irc_login):
    alice = irc_login("alice", caps=HISTORY_CAPS)
    seventh = room_messages[7]
    assert texts(alice, f"CHATHISTORY AROUND #general msgid={seventh.id} 1") == m(7)
    assert texts(alice, f"CHATHISTORY AROUND #general msgid={seventh.id} 3") == m(6, 7, 8)
    assert texts(alice, f"CHATHISTORY AROUND #general timestamp={seventh.ts} 4") == m(5, 6, 7, 8)


def test_direct_history_is_the_conversation_of_the_two(ticking, login, irc_login):
    bob, carol = login("bob"), login("carol")
    bob.send(Send(to="alice", text="hi alice", req=1))
    bob.outbox.next(Ok)
    carol.send(Send(to="alice", text="not with bob", req=2))
    carol.outbox.next(Ok)
    alice = irc_login("alice", caps=HISTORY_CAPS)
    assert texts(alice, "CHATHISTORY LATEST Bob * 10", target="bob") == ["hi alice"]


def test_targets_lists_conversations_by_their_latest_message(ticking, login, irc_login):
    bob = login("bob")
    stamps = {}
    for req, (where, text) in enumerate([("general", "a"), ("alice", "b"), ("general", "c")]):
        frame = Send(room=where, text=text, req=req) if where == "general" else None
        bob.send(frame or Send(to=where, text=text, req=req))
        stamps[where] = bob.outbox.next(Ok, req=req).ts
    alice = irc_login("alice", caps=HISTORY_CAPS)

    def targets(line: str) -> list[tuple[str, ...]]:
        alice.send(line)
        start = alice.next("BATCH")
        assert start.params[1:] == ("draft/chathistory-targets",)
        inner = alice.link.until("BATCH", params=(f"-{start.params[0][1:]}",))
        assert all(line.source == "chatsecure" for line in inner)
        return [line.params[1:] for line in inner if line.command == "CHATHISTORY"]

    every = [("bob", stamps["alice"]), ("#general", stamps["general"])]
    assert targets(f"CHATHISTORY TARGETS {NEVER} {FOREVER} 10") == every
    assert targets(f"CHATHISTORY TARGETS {NEVER} {FOREVER} 1") == every[:1]
    assert targets(f"CHATHISTORY TARGETS {FOREVER} {NEVER} 1") == every[1:]
    # Both ends are excluded, and only the latest message of a conversation counts.
    window = f"CHATHISTORY TARGETS timestamp={stamps['alice']} timestamp={stamps['general']} 9"
    assert targets(window) == []


def test_targets_of_rooms_and_chats_without_messages_is_an_empty_batch(irc_login):
    alice = irc_login("alice", caps=HISTORY_CAPS)
    alice.send(f"CHATHISTORY TARGETS {NEVER} {FOREVER} 10")
    start = alice.next("BATCH")
    assert alice.next("BATCH").params == (f"-{start.params[0][1:]}",)


def test_without_batch_the_page_comes_as_plain_messages(room_messages, irc_login):
    alice = irc_login("alice", caps="sasl server-time draft/chathistory")
    alice.send("CHATHISTORY LATEST #general * 2")
    assert [alice.next("PRIVMSG").params[1], alice.next("PRIVMSG").params[1]] == m(8, 9)
    assert not [line for line in alice.link.unread() if line.command == "BATCH"]


def test_targets_the_client_may_not_read_fail_as_invalid_target(login, irc_login):
    carol = login("carol")
    carol.send(Send(room="general", text="hello", req=1))
    carol.outbox.next(Ok)
    alice = irc_login("alice", caps=HISTORY_CAPS)
    for line, target in [
        ("CHATHISTORY LATEST #nowhere * 10", "#nowhere"),
        ("CHATHISTORY BEFORE nobody-here msgid=5 10", "nobody-here"),
    ]:
        alice.send(line)
        fail = alice.next("FAIL")
        assert fail.params == (
            "CHATHISTORY",
            "INVALID_TARGET",
            line.split()[1],
            target,
            "Messages could not be retrieved",
        )
    alice.send("PART #general")
    alice.next("PART")
    alice.send("CHATHISTORY LATEST #general * 10")
    assert alice.next("FAIL").params[1:4] == ("INVALID_TARGET", "LATEST", "#general")


def test_a_bad_request_fails_and_a_labeled_one_completes(irc_login):
    alice = irc_login("alice", caps=HISTORY_CAPS)
    alice.send("@label=q1 CHATHISTORY AROUND #general * 10")
    fail = alice.next("FAIL")
    assert fail.tags["label"] == "q1"
    assert fail.params[:3] == ("CHATHISTORY", "INVALID_PARAMS", "AROUND")


def test_a_store_failure_is_message_error_and_the_label_is_answered(
    irc_login, store: Store, monkeypatch: pytest.MonkeyPatch
):
    alice = irc_login("alice", caps=HISTORY_CAPS)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(store, "room_history", broken)
    alice.send("@label=q2 CHATHISTORY LATEST #general * 10")
    fail = alice.next("FAIL")
    assert fail.tags["label"] == "q2"
    assert fail.params[:4] == ("CHATHISTORY", "MESSAGE_ERROR", "LATEST", "#general")


def test_chathistory_without_the_capability_is_an_unknown_command(irc_login):
    alice = irc_login("alice", caps="sasl batch")
    alice.send("CHATHISTORY LATEST #general * 10")
    assert alice.next("421").params[1] == "CHATHISTORY"


def test_isupport_gives_the_limit_and_both_reference_types(irc):
    client = irc()
    client.sasl_login("alice", caps=HISTORY_CAPS)
    tokens = client.next("005").params
    assert {"CHATHISTORY=500", "MSGREFTYPES=msgid,timestamp"} <= set(tokens)
