"""Real IRC clients against a real server: WeeChat and irssi talk with a JSON client.

No fakes: the server is ``chatsecure-server`` from the working tree, the clients are the
Debian packages ``weechat-headless`` and ``irssi`` (in ``tmux``). Each test checks what
the client shows, in its own logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import send_direct, send_room
from tests.irc.realclients import Irssi, Weechat
from tests.serverproc import free_port, password_of

IRC_PORT = free_port()
SERVER_CONFIG: dict[str, dict[str, Any]] = {"irc": {"enabled": True, "port": IRC_PORT}}


def _clock_of(ts: str) -> str:
    """``2026-11-21T10:00:00.123Z`` -> ``10:00:00``: the time a client shows."""
    return ts[11:19]


def _until_the_second_after(ts: str) -> None:
    """Wait until the wall clock is past the second of ``ts``, so a client that showed a
    replayed message at its arrival time, not its stored time, would show another one."""
    stored = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    while time.time() < int(stored) + 1.2:
        time.sleep(0.1)


@pytest.fixture
def clients(server: ServerProcess, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    started: list[Weechat | Irssi] = []

    def start(kind: type[Weechat] | type[Irssi], user: str, name: str = "") -> Any:
        home = tmp_path / f"{kind.__name__.lower()}-{user}{name}"
        client = kind(home, IRC_PORT, server.ca_file, user, password_of(user))
        started.append(client)
        client.wait_registered()
        return client

    yield start
    for client in started:
        client.close()


def test_weechat_and_a_json_client_talk_in_a_room_and_in_private(server, clients):
    alice, bob = server.new_users(2)
    json_bob = server.member(bob, "weechat-room")
    weechat = clients(Weechat, alice)
    weechat.shows("server", "SASL authentication successful")  # not PASS
    weechat.do("server", "/join #weechat-room")
    weechat.shows("#weechat-room", f"{alice}", "has joined #weechat-room")
    json_bob.expect("member", room="weechat-room", user=alice, event="joined")

    send_room(json_bob, "weechat-room", "hello WeeChat")
    weechat.shows("#weechat-room", f"\t{bob}\thello WeeChat")
    weechat.do("#weechat-room", "hello JSON, from WeeChat")
    heard = json_bob.expect("message", room="weechat-room", **{"from": alice})
    assert heard["text"] == "hello JSON, from WeeChat"

    send_direct(json_bob, alice, "a word in private")
    weechat.shows(bob, f"\t{bob}\ta word in private")
    weechat.do("server", f"/msg {bob} private reply")
    assert json_bob.expect("message", to=bob)["text"] == "private reply"


def test_weechat_sees_history_with_its_stored_times_after_reconnecting(server, clients):
    alice, bob = server.new_users(2)
    json_bob = server.member(bob, "weechat-history")
    first = clients(Weechat, alice)
    first.do("server", "/join #weechat-history")
    first.shows("#weechat-history", "has joined #weechat-history")
    first.close()
    json_bob.expect("presence", user=alice, status="offline")
    ok = json_bob.request({"type": "send", "room": "weechat-history", "text": "while you were out"})
    _until_the_second_after(ok["ts"])

    again = clients(Weechat, alice, "-again")
    line = again.shows("#weechat-history", "while you were out")
    assert line.startswith(f"{ok['ts'][:10]} {_clock_of(ok['ts'])}\t{bob}\t")


def test_irssi_logs_in_with_pass_and_talks_with_a_json_client(server, clients):
    carol, dave = server.new_users(2)
    json_dave = server.member(dave, "irssi-room")
    earlier = json_dave.request({"type": "send", "room": "irssi-room", "text": "from before"})
    _until_the_second_after(earlier["ts"])
    irssi = clients(Irssi, carol)
    irssi.type("/join #irssi-room")
    line = irssi.shows("#irssi-room", f"< {dave}> from before")
    assert line.startswith(_clock_of(earlier["ts"]))  # replayed at its stored time
    json_dave.expect("member", room="irssi-room", user=carol, event="joined")

    send_room(json_dave, "irssi-room", "hello irssi")
    irssi.shows("#irssi-room", f"< {dave}> hello irssi")
    irssi.type("hello JSON, from irssi")
    heard = json_dave.expect("message", room="irssi-room", **{"from": carol})
    assert heard["text"] == "hello JSON, from irssi"

    send_direct(json_dave, carol, "psst, irssi")
    irssi.shows(dave, f"<{dave}> psst, irssi")
    irssi.type(f"/msg {dave} psst back")
    assert json_dave.expect("message", to=dave)["text"] == "psst back"
