"""Review finding 9: one send from a just-deleted account failed its whole batch.

With ``deluser dave`` while dave was connected, his one message and the messages of
alice and bob stored in the same batch all got ``server_error`` (FOREIGN KEY constraint
failed). A failed batch is now split until only the rows that cannot be stored fail.
"""

from __future__ import annotations

import json

from tests.e2e.helpers import assert_ok_send

ROOM = "busy"
EACH = 100


def _burst(client, tag: str, count: int) -> list[str]:
    """``count`` sends in one write, so the server's writer finds them queued together."""
    reqs = [f"{tag}{n}" for n in range(count)]
    frames = [
        {"type": "send", "room": ROOM, "text": f"{tag} {n}", "req": r} for n, r in enumerate(reqs)
    ]
    client.send_raw(b"".join(json.dumps(f).encode() + b"\n" for f in frames))
    return reqs


def test_a_deleted_senders_message_refuses_only_itself(server_factory):
    server = server_factory()
    alice, bob, dave = server.new_users(3)
    a, b, d = (server.member(user, ROOM) for user in (alice, bob, dave))
    server.admin("deluser", dave, "--yes")

    a_reqs = _burst(a, "a", EACH)
    d.send({"type": "send", "room": ROOM, "text": "from a deleted account", "req": "d0"})
    b_reqs = _burst(b, "b", EACH)

    for client, reqs in ((a, a_reqs), (b, b_reqs)):
        for req in reqs:
            assert_ok_send(client.expect(None, 30, req=req))
    # dave's own send is refused, or he was already cut off as a deleted account.
    reply = d.next_frame(30)
    while reply.get("req") != "d0" and reply["type"] != "bye":
        reply = d.next_frame(30)
    assert (reply["type"], reply.get("code"), reply.get("reason")) in {
        ("error", "server_error", None),
        ("bye", None, "account_disabled"),
    }
    assert server.running
