"""Finding 8: ``join``, ``leave`` and room creation were unlimited.

The review's attack: 356 leave+join cycles in 2 s, none refused, sent 712 member
frames to a bystander; 300 rooms created in 1 s. Now joins and leaves share a token
bucket per account (``room_changes_per_second``, ``room_change_burst``), an account may
create ``max_per_creator`` rooms and the server holds ``max_rooms``, and ``rooms`` is
paged (``after``, ``limit``, ``more``: an addition).
"""

from __future__ import annotations

import time

from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import assert_error, join

BURST = 10


def test_join_leave_churn_is_rate_limited_and_bystanders_hear_little(
    server_factory: ServerFactory,
) -> None:
    server = server_factory({"limits": {"room_changes_per_second": 1, "room_change_burst": BURST}})
    churner, bystander = server.new_users(2)
    room = "churn"
    watcher = server.member(bystander, room)
    client = server.login(churner)
    began = time.monotonic()
    allowed = 0
    for _ in range(100):  # 200 changes at once
        for kind in ("join", "leave"):
            reply = client.request({"type": kind, "room": room})
            if reply["type"] == "error" and reply["code"] == "not_member":
                continue  # a leave after a join that was refused
            if reply["type"] == "error":
                assert_error(reply, "rate_limited")
                assert reply["retry_after"] >= 1
                continue
            allowed += 1
            if kind == "join":
                client.expect("history", room=room)
                client.expect("who", room=room)
    elapsed = time.monotonic() - began
    assert allowed <= BURST + elapsed + 1, (allowed, elapsed)
    watcher.request({"type": "rooms"})  # every member frame sent before it has arrived
    heard = [f for f in watcher.take_queued() if f["type"] == "member"]
    assert len(heard) <= allowed


def test_room_creation_is_capped_per_creator_and_in_total(server_factory: ServerFactory) -> None:
    server = server_factory(
        {
            "limits": {"room_changes_per_second": 1000, "room_change_burst": 1000},
            "rooms": {"max_per_creator": 5, "max_rooms": 8},
        }
    )
    first, second, third = server.new_users(3)
    maker = server.login(first)
    for n in range(5):
        join(maker, f"mine-{n}")
    assert_error(maker.request({"type": "join", "room": "mine-5"}), "not_allowed")
    other = server.login(second)
    existing = len(other.request({"type": "rooms"})["rooms"])
    for n in range(8 - existing):  # up to the server's 8 in all
        join(other, f"theirs-{n}")
    reply = other.request({"type": "join", "room": "theirs-last"})
    assert_error(reply, "not_allowed")
    assert "most rooms" in reply["message"]
    # Joining rooms that exist is never capped.
    late = server.login(third)
    for n in range(5):
        join(late, f"mine-{n}")


def test_rooms_is_paged(server_factory: ServerFactory) -> None:
    server = server_factory(
        {"limits": {"room_changes_per_second": 1000, "room_change_burst": 1000}}
    )
    user = server.new_user()
    client = server.login(user)
    made = [f"page-{n:02d}" for n in range(18)]
    for room in made:
        join(client, room)
    everything = client.request({"type": "rooms"})
    assert everything["more"] is False
    names: list[str] = []
    after = None
    while True:
        frame = {"type": "rooms", "limit": 10} | ({"after": after} if after else {})
        page = client.request(frame)
        assert len(page["rooms"]) <= 10
        names += [r["name"] for r in page["rooms"]]
        if not page["more"]:
            break
        after = names[-1]
    assert names == [r["name"] for r in everything["rooms"]]
    assert set(made) <= set(names)
    assert_error(client.request({"type": "rooms", "limit": 1001}), "bad_request")
    assert_error(client.request({"type": "rooms", "after": "no spaces"}), "bad_request")
