"""The IRC port of a real ``chatsecure-server``: TLS, registration, rooms and messages
both ways with JSON clients, history with time tags, and the errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import join, send_direct, send_room
from tests.irc.client import IrcClients, IrcClosed, RawIrcClient
from tests.serverproc import free_port, password_of

IRC_PORT = free_port()
SERVER_CONFIG: dict[str, dict[str, Any]] = {"irc": {"enabled": True, "port": IRC_PORT}}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CAPS = "sasl server-time message-tags echo-message batch account-tag labeled-response"
EARLY, LATE = "2000-01-01T00:00:00.000Z", "2200-01-01T00:00:00.000Z"  # before and after all


@pytest.fixture
def raw_irc(server: ServerProcess) -> Iterator[Callable[..., RawIrcClient]]:
    """Raw IRC clients of the module server's IRC port."""
    clients = IrcClients(server)
    yield clients.connect
    clients.close()


def test_the_banner_names_the_irc_port(server):
    assert f"listening on 127.0.0.1:{IRC_PORT} (IRC)" in server.output()


def test_sasl_join_and_talk_both_ways_with_a_json_client(server, raw_irc):
    alice, bob = server.new_users(2)
    json_bob = server.login(bob)
    join(json_bob, "lobby")
    client = raw_irc()
    burst = client.sasl(alice, password_of(alice), CAPS)
    assert burst[-1].params[0] == alice
    client.send("JOIN #lobby")
    names = client.until("366")
    assert [m.params[-1] for m in names if m.command == "353"] == [" ".join(sorted((alice, bob)))]
    json_bob.expect("member", room="lobby", user=alice, event="joined")

    send_room(json_bob, "lobby", "hello IRC")
    heard = client.expect("PRIVMSG", "#lobby")
    assert heard.source == f"{bob}!{bob}@chatsecure"
    assert heard.params[1] == "hello IRC"
    assert TIME.fullmatch(heard.tags["time"])

    client.send("@label=s1 PRIVMSG #lobby :hello JSON")
    echo = client.expect("PRIVMSG", "#lobby", "hello JSON")
    assert echo.tags["label"] == "s1"
    message = json_bob.expect("message", room="lobby", **{"from": alice})
    assert message["text"] == "hello JSON"
    assert echo.tags["msgid"] == str(message["id"])

    client.send(f"PRIVMSG {bob} :just you")
    assert json_bob.expect("message", to=bob)["text"] == "just you"
    send_direct(json_bob, alice, "and you")
    direct = client.expect("PRIVMSG", alice, "and you")
    assert direct.source.startswith(f"{bob}!")


def test_pass_login_and_history_replayed_with_time_tags_after_reconnecting(server, raw_irc):
    alice, bob = server.new_users(2)
    json_bob = server.member(bob, "history-room")
    first = raw_irc()
    first.send(f"PASS {alice}:{password_of(alice)}")
    first.send(f"NICK {alice}")
    first.send(f"USER {alice} 0 * :{alice}")
    first.expect("376")
    first.send("JOIN #history-room")
    first.expect("366")
    sent = [send_room(json_bob, "history-room", f"while away {i}") for i in range(3)]
    first.send("QUIT")
    first.expect("ERROR")

    again = raw_irc()
    again.sasl(alice, password_of(alice), CAPS)
    start = again.expect("BATCH")
    while start.params[1:] != ("chathistory", "#history-room"):
        start = again.expect("BATCH")
    replayed = again.until("BATCH", f"-{start.params[0][1:]}")
    messages = [m for m in replayed if m.command == "PRIVMSG"]
    assert [m.params[1] for m in messages] == [f"while away {i}" for i in range(3)]
    assert [m.tags["msgid"] for m in messages] == [str(i) for i in sent]
    assert all(TIME.fullmatch(m.tags["time"]) for m in messages)


def test_errors_are_numerics_and_a_wrong_password_is_refused(server, raw_irc):
    (alice,) = server.new_users(1)
    client = raw_irc()
    client.sasl(alice, password_of(alice), "sasl")
    client.send("JOIN #Bad!Name")
    client.expect("479")
    client.send("PRIVMSG nobody-at-all :hi")
    client.expect("401")
    client.send("PART #never-made")
    client.expect("403")
    client.send("WHATEVER")
    client.expect("421")
    client.send("JOIN")
    client.expect("461")

    wrong = raw_irc()
    wrong.send(f"PASS {alice}:not-the-password")
    wrong.send(f"NICK {alice}")
    wrong.send("USER x 0 * :x")
    wrong.expect("464")
    wrong.expect("ERROR")
    with pytest.raises(IrcClosed):
        wrong.expect("PING")


def test_chathistory_pages_a_room_and_lists_targets_over_the_irc_port(server, raw_irc):
    alice, bob = server.new_users(2)
    json_bob = server.member(bob, "paged-room")
    ids = [send_room(json_bob, "paged-room", f"p{i}") for i in range(6)]
    send_direct(json_bob, alice, "psst")
    client = raw_irc()
    client.sasl(alice, password_of(alice), f"{CAPS} draft/chathistory")
    client.send("JOIN #paged-room")
    joined = client.until("366")
    assert not [m for m in joined if m.command == "BATCH"]  # no replay: it asks itself

    def page(line: str, target: str = "#paged-room") -> list[str]:
        client.send(line)
        start = client.expect("BATCH")
        assert start.params[1:] == ("chathistory", target)
        inner = client.until("BATCH", f"-{start.params[0][1:]}")
        return [m.params[1] for m in inner if m.command == "PRIVMSG"]

    assert page("CHATHISTORY LATEST #paged-room * 2") == ["p4", "p5"]
    assert page(f"CHATHISTORY BETWEEN #paged-room msgid={ids[5]} msgid={ids[0]} 2") == [
        "p3",
        "p4",
    ]
    assert page(f"CHATHISTORY AROUND #paged-room msgid={ids[2]} 3") == ["p1", "p2", "p3"]
    assert page(f"CHATHISTORY BEFORE {bob} timestamp={LATE} 5", bob) == ["psst"]

    client.send(f"CHATHISTORY TARGETS timestamp={EARLY} timestamp={LATE} 9")
    start = client.expect("BATCH")
    assert start.params[1:] == ("draft/chathistory-targets",)
    listed = client.until("BATCH", f"-{start.params[0][1:]}")
    targets = [m.params[1] for m in listed if m.command == "CHATHISTORY"]
    assert targets == ["#paged-room", bob]
    assert all(TIME.fullmatch(m.params[2]) for m in listed if m.command == "CHATHISTORY")

    client.send("CHATHISTORY LATEST #never-joined * 5")
    fail = client.expect("FAIL")
    assert fail.params[:4] == ("CHATHISTORY", "INVALID_TARGET", "LATEST", "#never-joined")


def test_a_stopping_server_says_goodbye_to_irc_clients(server, raw_irc):
    """Last in the module: it stops the module's server."""
    (alice,) = server.new_users(1)
    client = raw_irc()
    client.sasl(alice, password_of(alice), "sasl")
    assert server.stop() == 0
    assert client.expect("ERROR").params == ("Closing link: (Server shutting down)",)
