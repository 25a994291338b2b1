"""The IRC adapter over the real chat service, in memory: registration, rooms, messages.

IRC and JSON clients share one service here, as they share a server; only the links are
fakes. Real sockets, TLS and real IRC clients are in ``test_server.py`` and
``test_real_clients.py``.
"""

from __future__ import annotations

import base64

from chatsecure.protocol import Join, Joined, Login, Ok, Send, TopicChanged
from chatsecure.protocol import Message as JsonMessage
from chatsecure.protocol import Welcome as JsonWelcome
from chatsecure.server.core.housekeeping import BLOCKED_POLL_INTERVAL
from chatsecure.server.core.notices import StillThere
from chatsecure.server.irc.replies import split_text
from chatsecure.storage.store import ADMIN_ORIGIN
from tests.core.conftest import PASSWORD


def test_sasl_registration_then_the_burst_joins_rooms_with_names(irc):
    client = irc()
    client.sasl_login("alice")
    burst = client.link.until("366")
    commands = [m.command for m in burst]
    assert commands.index("001") < commands.index("005") < commands.index("376")
    isupport = next(m for m in burst if m.command == "005").params
    assert {"CHANTYPES=#", "CASEMAPPING=ascii", "NICKLEN=32", "UTF8ONLY"} <= set(isupport)
    join = burst[commands.index("JOIN")]
    assert (join.source, join.params) == ("alice!alice@chatsecure", ("#general",))
    names = burst[commands.index("353")]
    assert names.params == ("alice", "=", "#general", "alice")


def test_pass_with_user_and_password_logs_in_and_a_wrong_nick_is_corrected(irc):
    client = irc()
    client.send(f"PASS :bob:{PASSWORD}")
    client.send("NICK someone")
    client.send("USER x 0 * :X")
    nick = client.next("NICK")
    assert (nick.source, nick.params) == ("someone!someone@chatsecure", ("bob",))
    assert client.next("001").params[0] == "bob"


def test_pass_with_only_the_password_uses_the_nick_as_account_name(irc):
    client = irc()
    client.send(f"PASS :{PASSWORD}")
    client.send("NICK carol")
    client.send("USER x 0 * :X")
    assert client.next("001").params[0] == "carol"


def test_a_wrong_sasl_password_gets_904_and_may_try_again(irc):
    client = irc()
    client.send("CAP LS 302")
    client.send("CAP REQ :sasl")
    client.send("AUTHENTICATE PLAIN")
    client.send("AUTHENTICATE " + base64.b64encode(b"\0alice\0wrong").decode())
    failed = client.next("904")
    assert "invalid username or password" in failed.params[-1]
    client.send("AUTHENTICATE PLAIN")
    client.send("AUTHENTICATE " + base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode())
    client.next("903")


def test_a_wrong_pass_gets_464_and_the_link_is_closed(irc):
    client = irc()
    client.send("PASS alice:wrong")
    client.send("NICK alice")
    client.send("USER x 0 * :X")
    client.next("464")
    assert client.next("ERROR").params[0].startswith("Closing link")
    assert client.link.closed


def test_registration_without_any_login_gets_464(irc):
    client = irc()
    client.send("NICK alice")
    client.send("USER x 0 * :X")
    client.next("464")
    client.next("ERROR")
    assert client.link.closed


def test_messages_during_cap_negotiation_wait_for_the_end_of_registration(irc, login):
    client = irc()
    client.send("CAP LS 302")
    client.send("NICK alice")
    client.send("USER alice 0 * :alice")
    client.send("CAP REQ :sasl server-time")
    client.send("AUTHENTICATE PLAIN")
    client.send("AUTHENTICATE " + base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode())
    client.next("903")
    bob = login("bob")
    bob.send(Send(room="general", text="early bird", req=1))
    bob.outbox.next(Ok)
    assert not [m for m in client.link.unread() if m.command == "PRIVMSG"]
    client.send("CAP END")
    lines = client.link.until("PRIVMSG")
    assert [m.command for m in lines].index("001") < len(lines) - 1
    assert lines[-1].params == ("#general", "early bird")


def test_irc_and_json_users_talk_both_ways_in_a_room(irc_login, login):
    alice = irc_login("alice", caps="sasl server-time")
    bob = login("bob")
    bob.send(Send(room="general", text="hi from JSON", req=1))
    ok = bob.outbox.next(Ok)
    heard = alice.next("PRIVMSG")
    assert (heard.source, heard.params) == ("bob!bob@chatsecure", ("#general", "hi from JSON"))
    assert "time" in heard.tags
    assert "msgid" not in heard.tags  # message-tags was not asked for

    alice.send("PRIVMSG #general :hi from IRC")
    message = bob.outbox.next(JsonMessage, from_="alice")
    assert (message.room, message.text) == ("general", "hi from IRC")
    assert message.id > ok.id
    assert not [m for m in alice.link.unread() if m.command == "PRIVMSG"]  # no echo asked


def test_echo_message_comes_once_after_storing_with_the_label(irc_login, login):
    alice = irc_login("alice")
    bob = login("bob")
    alice.send("@label=L1 PRIVMSG #general :stored first")
    echo = alice.next("PRIVMSG")
    assert echo.tags["label"] == "L1"
    stored = bob.outbox.next(JsonMessage, from_="alice")
    assert echo.tags["msgid"] == str(stored.id)
    assert echo.tags["account"] == "alice"
    bob.send(Send(room="general", text="next", req=2))
    bob.outbox.next(Ok)
    after = alice.next("PRIVMSG")
    assert after.params == ("#general", "next")  # the echo was not repeated by the fan-out


def test_a_labeled_command_without_output_is_acked(irc_login):
    alice = irc_login("alice")
    alice.send("@label=p PONG x")
    assert alice.next("ACK").tags == {"label": "p"}


def test_a_labeled_command_with_several_lines_answers_in_one_batch(irc_login):
    alice = irc_login("alice")
    alice.send("@label=n NAMES #general")
    start = alice.next("BATCH")
    assert start.tags["label"] == "n"
    ref = start.params[0][1:]
    assert start.params[1] == "labeled-response"
    inside = alice.link.until("BATCH")
    assert [m.command for m in inside] == ["353", "366", "BATCH"]
    assert all(m.tags.get("batch") == ref for m in inside[:-1])


def test_direct_messages_both_ways(irc_login, login):
    alice = irc_login("alice")
    bob = login("bob")
    alice.send("PRIVMSG bob :psst")
    direct = bob.outbox.next(JsonMessage, to="bob")
    assert (direct.from_, direct.text) == ("alice", "psst")
    bob.send(Send(to="alice", text="back at you", req=3))
    bob.outbox.next(Ok)
    heard = [alice.next("PRIVMSG"), alice.next("PRIVMSG")]
    assert [(m.source, m.params) for m in heard] == [
        ("alice!alice@chatsecure", ("bob", "psst")),  # the echo
        ("bob!bob@chatsecure", ("alice", "back at you")),
    ]


def test_history_is_replayed_in_a_chathistory_batch_with_times(irc_login, login):
    bob = login("bob")
    for i in range(3):
        bob.send(Send(room="general", text=f"old {i}", req=i))
        bob.outbox.next(Ok)
    # A client with draft/chathistory asks for history itself (test_chathistory.py).
    alice = irc_login("alice", caps="sasl batch server-time message-tags")
    lines = alice.link.until("BATCH", params=())
    start = next(m for m in lines if m.command == "BATCH")
    assert start.params[1:] == ("chathistory", "#general")
    ref = start.params[0][1:]
    replayed = alice.link.until("BATCH")
    texts = [m.params[1] for m in replayed if m.command == "PRIVMSG"]
    assert texts == ["old 0", "old 1", "old 2"]
    assert all(m.tags["batch"] == ref and "time" in m.tags for m in replayed[:-1])
    assert replayed[-1].params == (f"-{ref}",)


def test_without_batch_history_comes_as_plain_messages_with_server_time(irc_login, login):
    bob = login("bob")
    bob.send(Send(room="general", text="earlier", req=1))
    bob.outbox.next(Ok)
    alice = irc_login("alice", caps="sasl server-time")
    replayed = alice.next("PRIVMSG")
    assert replayed.params == ("#general", "earlier")
    assert set(replayed.tags) == {"time"}


def test_join_part_names_who_list_topic(irc_login, login):
    alice = irc_login("alice", caps="sasl")
    bob = login("bob")
    alice.send("JOIN #Dev")
    lines = alice.link.until("366", params=("alice", "#dev"))
    assert any(m.command == "JOIN" and m.params == ("#dev",) for m in lines)
    bob.send(Join(room="dev", req=1))
    bob.outbox.next(Joined)
    assert alice.next("JOIN").source == "bob!bob@chatsecure"
    alice.send("NAMES #dev")
    assert alice.next("353").params[-1] == "alice bob"
    alice.send("WHO #dev")
    assert [alice.next("352").params[5], alice.next("352").params[5]] == ["alice", "bob"]
    alice.next("315")
    alice.send("LIST")
    listed = alice.link.until("323")
    assert ("alice", "#dev", "2", "") in [m.params for m in listed if m.command == "322"]
    alice.send("TOPIC #dev")
    alice.next("331")
    # alice made #dev by joining it, so she owns it and may set its topic; bob may not.
    alice.send("TOPIC #dev :\x02release\x02 friday")
    topic = alice.next("TOPIC")
    assert (topic.source, topic.params) == ("alice!alice@chatsecure", ("#dev", "release friday"))
    assert bob.outbox.next(TopicChanged).topic == "release friday"
    bob_irc = irc_login("bob", caps="sasl")
    bob_irc.send("TOPIC #dev :mine now")
    assert bob_irc.next("482").params[1] == "#dev"
    alice.send("PART #dev")
    assert alice.next("PART").params == ("#dev",)
    alice.send("PRIVMSG #dev :still here?")
    assert alice.next("404").params[1] == "#dev"


def test_a_room_the_admin_cli_makes_for_an_irc_user_is_joined(irc_login, core, store, clock):
    alice = irc_login("alice", caps="sasl")
    clock.now += BLOCKED_POLL_INTERVAL
    core._housekeeper._tick()  # the journal's first poll takes the newest row as its start
    owner = store.get_account("alice").id
    store.create_room("ops", creator_id=owner, topic="on call", origin=ADMIN_ORIGIN)
    clock.now += BLOCKED_POLL_INTERVAL
    core._housekeeper._tick()
    lines = alice.link.until("366", params=("alice", "#ops"))
    joins = [(m.source, m.params) for m in lines if m.command == "JOIN"]
    assert ("alice!alice@chatsecure", ("#ops",)) in joins
    assert ("alice", "#ops", "on call") in [m.params for m in lines if m.command == "332"]
    alice.send("NAMES #ops")
    assert alice.next("353").params[-1] == "alice"


def test_errors_for_bad_targets_and_commands(irc_login):
    alice = irc_login("alice", caps="sasl")
    alice.send("JOIN #Not/A/Room")
    assert alice.next("479").params[1] == "#Not/A/Room"
    alice.send("JOIN dev")
    alice.next("403")
    alice.send("PRIVMSG nobody-here :hi")
    assert alice.next("401").params[1] == "nobody-here"
    alice.send("PRIVMSG #nowhere :hi")
    assert alice.next("403").params[1] == "#nowhere"
    alice.send("PRIVMSG a,b,c,d,e :hi")
    alice.next("407")
    alice.send("FROBNICATE")
    alice.next("421")
    alice.send("PRIVMSG")
    alice.next("461")
    alice.send("NICK mallory")
    alice.next("432")
    alice.send("USER a 0 * :A")
    alice.next("462")


def test_a_multi_line_and_a_long_json_text_become_several_privmsgs(irc_login, login):
    alice = irc_login("alice", caps="sasl")
    bob = login("bob")
    long = "long " * 400
    bob.send(Send(room="general", text=f"line one\nline two\n{long}", req=1))
    bob.outbox.next(Ok)
    first, second = alice.next("PRIVMSG"), alice.next("PRIVMSG")
    assert (first.params[1], second.params[1]) == ("line one", "line two")
    rest = [alice.next("PRIVMSG").params[1] for _ in split_text(long, 430)[1:]]
    rest.insert(0, alice.next("PRIVMSG").params[1])
    assert "".join(rest).rstrip() == long.rstrip()


def test_presence_and_membership_appear_as_join_and_quit(irc_login, connect):
    alice = irc_login("alice", caps="sasl")
    alice.next("366")  # the end of its own JOIN to #general
    bob = connect()
    bob.send(Login(username="bob", password=PASSWORD, req="l"))
    bob.outbox.next(JsonWelcome)
    joined = alice.next("JOIN")
    assert (joined.source, joined.params) == ("bob!bob@chatsecure", ("#general",))
    bob.port.connection_lost()
    assert alice.next("QUIT").source == "bob!bob@chatsecure"


def test_an_irc_action_reaches_json_as_me_and_comes_back_as_an_action(irc_login, login):
    alice = irc_login("alice", caps="sasl")
    carol = irc_login("carol", caps="sasl")
    bob = login("bob")
    alice.send("PRIVMSG #general :\x01ACTION waves\x01")
    assert bob.outbox.next(JsonMessage, from_="alice").text == "/me waves"
    assert carol.next("PRIVMSG").params[1] == "\x01ACTION waves\x01"


def test_a_quit_says_goodbye_and_closes(irc_login):
    alice = irc_login("alice", caps="sasl")
    alice.send("QUIT :bye")
    assert alice.next("ERROR").params[0] == "Closing link: (Quit)"
    assert alice.link.closed


def test_ping_is_answered_and_a_quiet_client_is_pinged(irc_login):
    alice = irc_login("alice", caps="sasl")
    alice.send("PING :abc")
    assert alice.next("PONG").params == ("chatsecure", "abc")
    alice.port.notify(StillThere())
    assert alice.next("PING").params == ("chatsecure",)


def test_one_broadcast_is_encoded_once_for_readers_with_the_same_tags(irc_login, login):
    readers = [irc_login("carol", caps="sasl server-time") for _ in range(2)]
    bob = login("bob")
    bob.send(Send(room="general", text="to all", req=1))
    bob.outbox.next(Ok)
    for reader in readers:
        reader.next("PRIVMSG")
    first, second = (next(c for c in reversed(r.link.chunks) if b"PRIVMSG" in c) for r in readers)
    assert first is second


MULTILINE_CAPS = "sasl batch message-tags echo-message labeled-response draft/multiline"


def test_a_multi_line_text_comes_in_one_multiline_batch_to_clients_that_ask(irc_login, login):
    alice = irc_login("alice", caps=MULTILINE_CAPS)
    bob = login("bob")
    long_line = "word " * 150
    bob.send(Send(room="general", text=f"first\n{long_line}", req=1))
    ok = bob.outbox.next(Ok)
    start = alice.next("BATCH", params=(f"+ml{ok.id}",))
    assert start.params[1:] == ("draft/multiline", "#general")
    assert start.tags["msgid"] == str(ok.id)
    inside = alice.link.until("BATCH", params=(f"-ml{ok.id}",))[:-1]
    assert inside[0].params == ("#general", "first")
    assert "draft/multiline-concat" not in inside[1].tags
    assert all("draft/multiline-concat" in m.tags for m in inside[2:])
    assert len(inside) > 2
    assert "".join(m.params[1] for m in inside[1:]) == long_line


def test_a_multiline_batch_from_irc_is_one_message_with_its_lines(irc_login, login):
    alice = irc_login("alice", caps=MULTILINE_CAPS)
    bob = login("bob")
    alice.send("@label=m1 BATCH +x draft/multiline #general")
    alice.send("@batch=x PRIVMSG #general :one")
    alice.send("@batch=x PRIVMSG #general :two and")
    alice.send("@batch=x;draft/multiline-concat PRIVMSG #general : a half")
    alice.send("BATCH -x")
    message = bob.outbox.next(JsonMessage, from_="alice")
    assert message.text == "one\ntwo and a half"
    labeled = alice.next("BATCH")
    assert (labeled.tags["label"], labeled.params[1]) == ("m1", "labeled-response")
    echo = alice.next("BATCH")
    assert echo.params[1:] == ("draft/multiline", "#general")
    lines = alice.link.until("BATCH", params=(f"-{echo.params[0][1:]}",))
    assert [m.params[1] for m in lines if m.command == "PRIVMSG"] == ["one", "two and a half"]


def test_a_multiline_batch_over_max_bytes_is_refused_whole(irc_login, login, settings):
    alice = irc_login("alice", caps=MULTILINE_CAPS)
    alice.send("BATCH +big draft/multiline #general")
    line = "y" * 400
    for _ in range(settings.limits.max_text_chars // 400 + 1):
        alice.send(f"@batch=big PRIVMSG #general :{line}")
    alice.send("BATCH -big")
    fail = alice.next("FAIL")
    assert fail.params[:2] == ("BATCH", "MULTILINE_MAX_BYTES")
    alice.send("PING :after")
    before = alice.link.until("PONG")
    assert not [m for m in before if m.command in ("PRIVMSG", "BATCH")]


def test_multiline_without_batch_is_refused(irc):
    client = irc()
    client.send("CAP LS 302")
    offered = client.next("CAP").params[-1].split()
    assert "draft/multiline=max-bytes=4000,max-lines=100" in offered
    client.send("CAP REQ :draft/multiline")
    assert client.next("CAP").params[1] == "NAK"
