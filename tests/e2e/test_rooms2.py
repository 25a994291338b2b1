"""Private rooms, topics, roles, invitations, kicks and bans (the contract's ``rooms2``),
seen by a client that knows only the contract."""

from __future__ import annotations

from typing import Any

from tests.e2e.client import ChatClient
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import assert_error, history, join, send_room


def create(client: ChatClient, room: str, **fields: Any) -> dict[str, Any]:
    """``create`` ``room``; returns the ``joined`` reply (its history and who taken)."""
    joined = client.request({"type": "create", "room": room, **fields})
    assert joined["type"] == "joined", joined
    client.expect("history", room=room)
    client.expect("who", room=room)
    return joined


def ok(client: ChatClient, frame: dict[str, Any]) -> dict[str, Any]:
    reply = client.request(frame)
    assert reply["type"] == "ok", reply
    return reply


def test_hello_announces_the_features(server: ServerProcess) -> None:
    hello = server.connect().hello
    assert hello is not None
    assert set(hello["features"]) >= {"rooms2", "edit", "read"}


def test_create_makes_the_creator_owner_and_a_taken_name_is_refused(server: ServerProcess) -> None:
    alice, bob = server.new_users(2)
    a = server.login(alice)
    joined = create(a, "r2-create", private=True, topic="on call")
    assert (joined["topic"], joined["private"], joined["role"]) == ("on call", True, "owner")
    b = server.login(bob)
    assert_error(b.request({"type": "create", "room": "r2-create"}), "room_exists")
    assert_error(a.request({"type": "create", "room": "r2-create"}), "room_exists")
    public = create(b, "r2-public")
    assert (public["topic"], public["private"], public["role"]) == ("", False, "owner")


def test_a_private_room_is_missing_to_outsiders_by_every_request(server: ServerProcess) -> None:
    owner, outsider = server.new_users(2)
    a = server.login(owner)
    create(a, "r2-secret", private=True, topic="hush")
    msg = send_room(a, "r2-secret", "the plan")
    o = server.login(outsider)
    missing = "r2-nothing-here"
    for room in ("r2-secret", missing):
        for frame in (
            {"type": "who", "room": room},
            {"type": "history", "room": room},
            {"type": "send", "room": room, "text": "hi"},
            {"type": "topic", "room": room, "topic": "mine"},
            {"type": "invite", "room": room, "user": outsider},
            {"type": "kick", "room": room, "user": owner},
            {"type": "read", "room": room, "up_to": msg},
            {"type": "leave", "room": room},
        ):
            assert_error(o.request(frame), "no_such_room")
    # Joining: the private room is refused as missing; the missing one is simply created.
    assert_error(o.request({"type": "join", "room": "r2-secret"}), "no_such_room")
    listed = o.request({"type": "rooms"})
    assert "r2-secret" not in [r["name"] for r in listed["rooms"]]
    assert_error(o.request({"type": "edit", "id": msg, "text": "x"}), "no_such_message")
    assert_error(o.request({"type": "delete", "id": msg}), "no_such_message")
    mine = a.request({"type": "rooms"})
    entry = next(r for r in mine["rooms"] if r["name"] == "r2-secret")
    assert entry["private"] is True
    assert entry["topic"] == "hush"
    assert entry["joined"] is True


def test_invite_lets_the_invitee_join_once(server: ServerProcess) -> None:
    owner, guest = server.new_users(2)
    a = server.login(owner)
    create(a, "r2-invite", private=True, topic="ops")
    g = server.login(guest)
    ok(a, {"type": "invite", "room": "r2-invite", "user": guest})
    invited = g.expect("invited", room="r2-invite")
    assert invited == {"type": "invited", "room": "r2-invite", "by": owner, "topic": "ops"}
    joined, _, who = join(g, "r2-invite")
    assert joined["role"] == "member"
    assert joined["private"] is True
    roles = {m["user"]: m["role"] for m in who["members"]}
    assert roles == {owner: "owner", guest: "member"}
    a.expect("member", room="r2-invite", user=guest, event="joined")
    ok(g, {"type": "leave", "room": "r2-invite"})
    assert_error(g.request({"type": "join", "room": "r2-invite"}), "no_such_room")


def test_only_owners_and_moderators_moderate(server: ServerProcess) -> None:
    owner, mod, member, other = server.new_users(4)
    a = server.login(owner)
    create(a, "r2-roles")
    m = server.member(mod, "r2-roles")
    p = server.member(member, "r2-roles")
    server.member(other, "r2-roles")
    assert_error(p.request({"type": "topic", "room": "r2-roles", "topic": "x"}), "not_allowed")
    assert_error(
        m.request({"type": "role", "room": "r2-roles", "user": member, "role": "moderator"}),
        "not_allowed",
    )
    ok(a, {"type": "role", "room": "r2-roles", "user": mod, "role": "moderator"})
    change = p.expect("role", room="r2-roles", user=mod)
    assert change == {
        "type": "role",
        "room": "r2-roles",
        "user": mod,
        "role": "moderator",
        "by": owner,
    }
    ok(m, {"type": "topic", "room": "r2-roles", "topic": "new topic"})
    topic = p.expect("topic", room="r2-roles")
    assert topic == {"type": "topic", "room": "r2-roles", "topic": "new topic", "by": mod}
    # Owners cannot be kicked; a moderator cannot remove another moderator.
    assert_error(m.request({"type": "kick", "room": "r2-roles", "user": owner}), "not_allowed")
    ok(a, {"type": "role", "room": "r2-roles", "user": other, "role": "moderator"})
    assert_error(m.request({"type": "ban", "room": "r2-roles", "user": other}), "not_allowed")
    assert_error(
        a.request({"type": "topic", "room": "r2-roles", "topic": "x" * 301}), "bad_request"
    )


def test_kick_and_ban(server: ServerProcess) -> None:
    owner, target, watcher = server.new_users(3)
    a = server.login(owner)
    create(a, "r2-kick")
    t = server.member(target, "r2-kick")
    w = server.member(watcher, "r2-kick")
    ok(a, {"type": "kick", "room": "r2-kick", "user": target, "reason": "spam"})
    kicked = t.expect("kicked", room="r2-kick")
    assert kicked == {
        "type": "kicked",
        "room": "r2-kick",
        "by": owner,
        "reason": "spam",
        "ban": False,
    }
    w.expect("member", room="r2-kick", user=target, event="left")
    assert_error(t.request({"type": "history", "room": "r2-kick"}), "not_member")
    send_room(a, "r2-kick", "after the kick")
    w.expect("message", room="r2-kick", text="after the kick")
    join(t, "r2-kick")  # a kick is not a ban
    ok(a, {"type": "ban", "room": "r2-kick", "user": target, "reason": "again"})
    banned = t.expect("kicked", room="r2-kick")
    assert banned["ban"] is True
    assert_error(t.request({"type": "join", "room": "r2-kick"}), "banned")
    ok(a, {"type": "unban", "room": "r2-kick", "user": target})
    join(t, "r2-kick")
    assert not [
        f for f in t.sync() if f.get("type") == "message" and f.get("text") == "after the kick"
    ]


def test_server_admins_moderate_any_room(server: ServerProcess) -> None:
    owner, boss, target = server.new_users(3)
    server.admin("admin", boss, "on")
    a = server.login(owner)
    create(a, "r2-admin", private=True)
    ok(a, {"type": "invite", "room": "r2-admin", "user": target})
    t = server.login(target)
    join(t, "r2-admin")
    b = server.login(boss)
    ok(b, {"type": "topic", "room": "r2-admin", "topic": "by the admin"})
    a.expect("topic", room="r2-admin", by=boss)
    ok(b, {"type": "kick", "room": "r2-admin", "user": target})
    t.expect("kicked", room="r2-admin", by=boss)
    server.admin("admin", boss, "off")
    assert_error(b.request({"type": "topic", "room": "r2-admin", "topic": "x"}), "no_such_room")


def test_admin_cli_kick_reaches_the_running_server(server: ServerProcess) -> None:
    owner, target = server.new_users(2)
    a = server.login(owner)
    create(a, "r2-cli")
    t = server.member(target, "r2-cli")
    server.admin("room", "ban", "r2-cli", target, "--reason", "by the admin")
    kicked = t.expect("kicked", room="r2-cli", timeout=10)
    assert kicked["ban"] is True
    assert kicked["reason"] == "by the admin"
    a.expect("member", room="r2-cli", user=target, event="left", timeout=10)
    send_room(a, "r2-cli", "not for the banned")
    assert_error(t.request({"type": "join", "room": "r2-cli"}), "banned")
    assert history(a, room="r2-cli")["messages"][-1]["text"] == "not for the banned"


def _of(frames: list[dict[str, Any]], kind: str, **fields: Any) -> list[dict[str, Any]]:
    return [
        f for f in frames if f["type"] == kind and all(f.get(k) == v for k, v in fields.items())
    ]


def _refusals(client: ChatClient, room: str, user: str) -> list[tuple[str, str]]:
    """Every request about ``room`` a non-member may make, as (code, message) with the
    room's name written ``ROOM``."""
    answers = []
    for frame in (
        {"type": "join", "room": room},
        {"type": "who", "room": room},
        {"type": "history", "room": room},
        {"type": "send", "room": room, "text": "hi"},
        {"type": "leave", "room": room},
        {"type": "read", "room": room, "up_to": 1},
        {"type": "topic", "room": room, "topic": "mine"},
        {"type": "invite", "room": room, "user": user},
        {"type": "kick", "room": room, "user": user},
        {"type": "ban", "room": room, "user": user},
        {"type": "unban", "room": room, "user": user},
        {"type": "role", "room": room, "user": user, "role": "member"},
    ):
        reply = client.request(frame)
        assert reply["type"] == "error", reply
        answers.append((reply["code"], reply["message"].replace(room, "ROOM")))
    return answers


def test_a_ban_of_a_non_member_tells_no_one_and_hides_the_room(
    server_factory: ServerFactory,
) -> None:
    # Users may not make rooms here, so a join of a missing room is refused, not a creation.
    server = server_factory(
        {
            "rooms": {"users_can_create": False},
            "limits": {"room_changes_per_second": 1000, "room_change_burst": 1000},
        }
    )
    owner, member, outsider, invitee, other = server.new_users(5)
    server.admin("room", "create", "r2-hush", "--private", "--owner", owner)
    server.admin("room", "create", "r2-open", "--owner", owner)
    a = server.login(owner)
    ok(a, {"type": "invite", "room": "r2-hush", "user": member})
    m = server.login(member)
    join(m, "r2-hush")
    o = server.login(outsider)
    i = server.login(invitee)
    ok(a, {"type": "invite", "room": "r2-hush", "user": invitee})
    i.expect("invited", room="r2-hush")
    ok(a, {"type": "ban", "room": "r2-hush", "user": outsider, "reason": "spam"})
    ok(a, {"type": "ban", "room": "r2-hush", "user": invitee, "reason": "spam"})
    for client in (a, m):
        assert not _of(client.sync(), "member", event="left"), "a non-member did not leave"
    for banned in (o, i):
        assert not _of(banned.sync(), "kicked")
    # To each, the room is exactly a missing one, by join and by every other request
    # (the invitee's invitation went with the ban).
    missing = _refusals(o, "r2-never", owner)
    assert {code for code, _ in missing} == {"no_such_room"}
    assert _refusals(o, "r2-hush", owner) == missing
    assert _refusals(i, "r2-hush", owner) == missing
    # So with a ban by the admin CLI; the kick of a member after it is a barrier: the
    # journal is applied in order, so anything about the ban would have come before.
    c = server.login(other)
    server.admin("room", "ban", "r2-hush", other, "--reason", "spam")
    server.admin("room", "kick", "r2-hush", member)
    m.expect("kicked", room="r2-hush", timeout=10)
    before, _ = a.frames_until("member", timeout=10, room="r2-hush", user=member)
    assert not _of(before, "member", user=other)
    assert not _of(c.sync(), "kicked")
    assert _refusals(c, "r2-hush", owner) == missing
    # A member who is banned was told, and is refused as banned.
    ok(a, {"type": "invite", "room": "r2-hush", "user": member})
    join(m, "r2-hush")
    ok(a, {"type": "ban", "room": "r2-hush", "user": member})
    m.expect("kicked", room="r2-hush", ban=True)
    assert_error(m.request({"type": "join", "room": "r2-hush"}), "banned")
    # In a public room a ban is no secret: the outsider's join is refused as banned.
    ok(a, {"type": "ban", "room": "r2-open", "user": outsider})
    assert not _of(o.sync(), "kicked")
    assert_error(o.request({"type": "join", "room": "r2-open"}), "banned")


def test_every_session_of_every_remaining_member_sees_a_removal(server: ServerProcess) -> None:
    owner, target, watcher = server.new_users(3)
    a = server.login(owner)
    create(a, "r2-seen")
    a2 = server.login(owner)
    t = server.member(target, "r2-seen")
    w = server.member(watcher, "r2-seen")
    for ban in (False, True):
        if ban:
            join(t, "r2-seen")
            for client in (a, a2, w):
                client.expect("member", room="r2-seen", user=target, event="joined")
        kind = "ban" if ban else "kick"
        ok(a, {"type": kind, "room": "r2-seen", "user": target})
        for client in (a, a2, w):  # the requesting session too, as for topic or role
            client.expect("member", room="r2-seen", user=target, event="left")
        t.expect("kicked", room="r2-seen", ban=ban)


def test_an_invitation_lapses_for_good_with_the_inviters_role(server: ServerProcess) -> None:
    owner, mod, guest, late = server.new_users(4)
    a = server.login(owner)
    create(a, "r2-lapse", private=True)
    ok(a, {"type": "invite", "room": "r2-lapse", "user": mod})
    c = server.login(mod)
    join(c, "r2-lapse")
    ok(a, {"type": "role", "room": "r2-lapse", "user": mod, "role": "moderator"})
    ok(c, {"type": "invite", "room": "r2-lapse", "user": guest})
    ok(c, {"type": "invite", "room": "r2-lapse", "user": late})
    d = server.login(guest)
    ok(a, {"type": "role", "room": "r2-lapse", "user": mod, "role": "member"})
    assert_error(d.request({"type": "join", "room": "r2-lapse"}), "no_such_room")
    ok(a, {"type": "role", "room": "r2-lapse", "user": mod, "role": "moderator"})
    assert_error(d.request({"type": "join", "room": "r2-lapse"}), "no_such_room")
    assert_error(server.login(late).request({"type": "join", "room": "r2-lapse"}), "no_such_room")
    # An inviter who leaves takes their invitations along too.
    ok(c, {"type": "invite", "room": "r2-lapse", "user": guest})
    ok(c, {"type": "leave", "room": "r2-lapse"})
    assert_error(d.request({"type": "join", "room": "r2-lapse"}), "no_such_room")


def test_the_only_owner_cannot_be_demoted(server: ServerProcess) -> None:
    owner, boss, other = server.new_users(3)
    server.admin("admin", boss, "on")
    a = server.login(owner)
    create(a, "r2-owned")
    b = server.login(boss)
    join(b, "r2-owned")
    for role in ("moderator", "member"):
        change = {"type": "role", "room": "r2-owned", "user": owner, "role": role}
        assert_error(a.request(change), "not_allowed")  # by the owner
        refused = assert_error(b.request(change), "not_allowed")  # by a server admin
        assert "only owner" in refused["message"]
    o = server.member(other, "r2-owned")
    ok(a, {"type": "role", "room": "r2-owned", "user": other, "role": "owner"})
    ok(b, {"type": "role", "room": "r2-owned", "user": owner, "role": "member"})
    o.expect("role", room="r2-owned", user=owner, role="member")
    _, _, who = join(o, "r2-owned")
    roles = {m["user"]: m["role"] for m in who["members"]}
    assert roles == {owner: "member", boss: "member", other: "owner"}
    by_cli = server.admin("room", "role", "r2-owned", other, "member", check=False)
    assert by_cli.returncode != 0
    assert "only owner" in by_cli.stderr
