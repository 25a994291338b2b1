"""Presence: online at a user's first session, offline at the last, to room-mates only."""

from __future__ import annotations

from tests.e2e.client import ChatClient, Frame
from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import join, send_room, settle


def presence_of(frames: list[Frame], user: str) -> list[str]:
    return [f["status"] for f in frames if f["type"] == "presence" and f["user"] == user]


def barrier(sender: ChatClient, room: str, *watchers: ChatClient) -> list[list[Frame]]:
    """Send to ``room`` and return what each watcher received before that message.

    Presence for an event before the send would have been queued before the message.
    """
    message_id = send_room(sender, room, "barrier")
    return [watcher.frames_until("message", id=message_id)[0] for watcher in watchers]


def test_online_at_first_session_offline_at_last(server: ServerProcess) -> None:
    watcher_name, subject = server.new_users(2)
    room = "presence-basic"
    setup = server.member(subject, room)
    setup.close()
    watcher = server.login(watcher_name)
    settle(watcher, join(watcher, room)[2], subject)

    first = server.login(subject)
    assert watcher.expect("presence", user=subject) == {
        "type": "presence",
        "user": subject,
        "status": "online",
    }
    second = server.login(subject)
    (before,) = barrier(second, room, watcher)
    assert presence_of(before, subject) == []  # a second session is no news

    first.close()
    (before,) = barrier(second, room, watcher)
    assert presence_of(before, subject) == []  # still online
    second.send({"type": "logout"})
    second.wait_closed()
    assert watcher.expect("presence", user=subject) == {
        "type": "presence",
        "user": subject,
        "status": "offline",
    }


def test_presence_goes_only_to_users_sharing_a_room(server: ServerProcess) -> None:
    subject, mate, stranger = server.new_users(3)
    shared, elsewhere = "presence-shared", "presence-elsewhere"
    setup = server.member(subject, shared)
    setup.close()
    mate_client = server.login(mate)
    settle(mate_client, join(mate_client, shared)[2], subject)
    join(mate_client, elsewhere)
    stranger_client = server.member(stranger, elsewhere)

    subject_client = server.login(subject)
    mate_client.expect("presence", user=subject, status="online")
    # The stranger shares no room with the subject: the subject's own message in a
    # room the stranger cannot see is no barrier, so the stranger's barrier is the mate's.
    _, stranger_before = barrier(mate_client, elsewhere, mate_client, stranger_client)
    assert presence_of(stranger_before, subject) == []

    subject_client.close()
    mate_client.expect("presence", user=subject, status="offline")
    _, stranger_before = barrier(mate_client, elsewhere, mate_client, stranger_client)
    assert presence_of(stranger_before, subject) == []


def test_who_reflects_presence(server: ServerProcess) -> None:
    subject, watcher_name = server.new_users(2)
    room = "presence-who"
    watcher = server.member(watcher_name, room)
    subject_client = server.member(subject, room)

    def online() -> dict[str, bool]:
        reply = watcher.request({"type": "who", "room": room})
        return {m["user"]: m["online"] for m in reply["members"]}

    assert online() == {subject: True, watcher_name: True}
    subject_client.close()
    watcher.expect("presence", user=subject, status="offline")
    assert online() == {subject: False, watcher_name: True}


def test_own_presence_is_not_news_to_oneself(server: ServerProcess) -> None:
    user, mate = server.new_users(2)
    room = "presence-self"
    first = server.member(user, room)
    join(server.login(mate), room)
    second = server.login(user)
    (before,) = barrier(second, room, first)
    assert presence_of(before, user) == []
