"""What an IRC session handles on the transport's reading thread, and what it sets aside.

Only what never waits runs there: PING, PONG, and PRIVMSG or NOTICE to channels the
account is in. The first other line goes to ``Link.aside`` with every line behind it.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.irc.conftest import IrcClient


def test_channel_messages_and_pings_are_handled_inline(
    irc_login: Callable[..., IrcClient],
) -> None:
    alice = irc_login("alice")
    alice.link.held = []
    alice.send("PRIVMSG #general :hi", "NOTICE #general :note", "PING :x")
    assert alice.link.held == []
    assert alice.next("PONG").params[-1] == "x"


def test_a_line_that_may_wait_is_set_aside_with_those_behind_it(
    irc_login: Callable[..., IrcClient],
) -> None:
    alice = irc_login("alice")
    alice.link.held = []
    alice.send(
        "PRIVMSG #general :before",
        "PRIVMSG bob :direct",  # the store names the peer
        "PING :behind",
        "PRIVMSG #nowhere :not a member",
    )
    assert len(alice.link.held) == 1
    assert alice.next("PRIVMSG").params == ("#general", "before")  # the echo
    assert [m.command for m in alice.link.unread() if m.command == "PONG"] == []

    alice.link.held.pop()()
    assert alice.link.held == []
    assert alice.next("PONG").params[-1] == "behind"
    alice.next("403")  # #nowhere, after the ping, in order
