"""Broadcasts on the IRC wire: each member hears a room's message once, the sender never."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chatsecure.protocol import Message as JsonMessage
from chatsecure.protocol import Ok, Send
from chatsecure.server.link import send_around
from tests.core.conftest import Client
from tests.irc.conftest import ALL_CAPS, IrcClient


@pytest.mark.parametrize(
    ("gaps", "heard"),
    [
        ([], [0, 1, 2, 3, 4]),
        ([0], [1, 2, 3, 4]),
        ([4], [0, 1, 2, 3]),
        ([1, 2], [0, 3, 4]),
        ([0, 2, 4], [1, 3]),
    ],
)
def test_send_around_leaves_out_exactly_the_gaps(gaps: list[int], heard: list[int]) -> None:
    got: list[int] = []
    sends = [lambda _data, n=n: got.append(n) for n in range(5)]
    send_around(sends, gaps, b"x")
    assert got == heard


def test_the_senders_other_sessions_hear_its_message_and_it_hears_its_echo_once(
    irc_login: Callable[..., IrcClient], login: Callable[..., Client]
) -> None:
    # Three groups of encodings: every cap, server-time only, no tags at all.
    sender = irc_login("alice")
    same_account = irc_login("alice", caps="sasl server-time")
    plain = irc_login("carol", caps="sasl")
    bob = login("bob")

    sender.send("PRIVMSG #general :one")
    assert sender.next("PRIVMSG").params == ("#general", "one")  # the echo
    for member in (same_account, plain):
        heard = member.next("PRIVMSG")
        assert (heard.source, heard.params) == ("alice!alice@chatsecure", ("#general", "one"))
    bob.outbox.next(JsonMessage, from_="alice")

    bob.send(Send(room="general", text="two", req=1))
    bob.outbox.next(Ok)
    # Had the fan-out told the sender of "one" too, that would come first here.
    members = (sender, same_account, plain)
    assert [m.next("PRIVMSG").params for m in members] == [("#general", "two")] * 3
    assert not [m for member in members for m in member.link.unread() if m.command == "PRIVMSG"]


def test_a_session_without_echo_message_does_not_hear_its_own_message(
    irc_login: Callable[..., IrcClient],
) -> None:
    sender = irc_login("alice", caps="sasl")
    listener = irc_login("carol", caps=ALL_CAPS)
    sender.send("PRIVMSG #general :quiet")
    assert listener.next("PRIVMSG").params == ("#general", "quiet")
    sender.send("PING :after")
    sender.next("PONG")
    assert not [m for m in sender.link.unread() if m.command == "PRIVMSG"]
