"""Finding 5: a password change must end every other session of the account.

Before the fix, after ``passwd`` (or ``chatsecure-admin passwd``) the account's other
sessions kept reading and sending: someone who had the old password stayed in. Now
each account has a credential generation, bumped by every change and checked where
the server already polls for disabled accounts; stale sessions get ``bye``
``credentials_changed``. The session that made the change stays.
"""

from __future__ import annotations

from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import join, send_room
from tests.serverproc import password_of

NEW_PASSWORD = "a fresh and long passphrase"


def test_passwd_ends_the_accounts_other_sessions_and_keeps_its_own(server: ServerProcess) -> None:
    user, friend = server.new_users(2)
    changer, other, elsewhere = (server.login(user) for _ in range(3))
    room = "pw-change"
    join(changer, room)
    listener = server.member(friend, room)

    reply = changer.request({"type": "passwd", "old": password_of(user), "new": NEW_PASSWORD})
    assert reply["type"] == "ok", reply
    for stale in (other, elsewhere):
        stale.expect_bye("credentials_changed", timeout=6)
        stale.take_queued()

    sent = send_room(changer, room, "still here after my own change")
    assert listener.expect("message", id=sent)["text"] == "still here after my own change"
    assert server.connect().login(user, NEW_PASSWORD)["user"] == user


def test_an_admins_passwd_ends_every_session(server: ServerProcess) -> None:
    user = server.new_user()
    sessions = [server.login(user) for _ in range(2)]
    server.admin("passwd", user, "--password-stdin", stdin=NEW_PASSWORD + "\n")
    for session in sessions:
        session.expect_bye("credentials_changed", timeout=6)
    assert server.connect().login(user, NEW_PASSWORD)["user"] == user


def test_a_failed_passwd_ends_nothing(server: ServerProcess) -> None:
    user = server.new_user()
    changer, other = server.login(user), server.login(user)
    reply = changer.request({"type": "passwd", "old": "not my password", "new": NEW_PASSWORD})
    assert reply.get("code") == "auth_failed", reply
    assert other.request({"type": "rooms"})["type"] == "rooms"
    assert changer.request({"type": "rooms"})["type"] == "rooms"
