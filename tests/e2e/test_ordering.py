"""Many senders at once: every session sees every message once, in strictly increasing id order."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.e2e.client import ChatClient, Frame
from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import assert_ok_send, join
from tests.serverproc import password_of

MESSAGES_PER_SENDER = 150
PIPELINE = 10  # requests in flight per sender
DEADLINE = 60.0


def send_many(client: ChatClient, target: dict[str, Any], label: str) -> list[int]:
    """Send ``MESSAGES_PER_SENDER`` messages, ``PIPELINE`` at a time; the acked ids."""
    acked: list[int] = []
    for start in range(0, MESSAGES_PER_SENDER, PIPELINE):
        reqs = [f"{label}-{n}" for n in range(start, min(start + PIPELINE, MESSAGES_PER_SENDER))]
        for req in reqs:
            client.send({"type": "send", **target, "text": req, "req": req})
        acked += [assert_ok_send(client.expect(None, 10, req=req)) for req in reqs]
    return acked


def collect(client: ChatClient, count: int, belongs: Callable[[Frame], bool]) -> list[Frame]:
    """The first ``count`` messages (received or to come) for which ``belongs`` holds."""
    got: list[Frame] = []
    deadline = time.monotonic() + DEADLINE
    while len(got) < count:
        frame = client.next_frame(max(deadline - time.monotonic(), 0.01))
        if frame["type"] == "message" and belongs(frame):
            got.append(frame)
    return got


def check_stream(received: list[Frame], acked: set[int]) -> None:
    ids = [m["id"] for m in received]
    assert all(a < b for a, b in itertools.pairwise(ids)), "ids not strictly increasing"
    assert set(ids) == acked


def run_concurrently(
    senders: list[tuple[ChatClient, dict[str, Any], str]],
    receivers: list[ChatClient],
    belongs: Callable[[Frame], bool],
) -> tuple[set[int], list[list[Frame]]]:
    total = len(senders) * MESSAGES_PER_SENDER
    with ThreadPoolExecutor(len(senders) + len(receivers)) as pool:
        sending = [pool.submit(send_many, c, target, label) for c, target, label in senders]
        receiving = [pool.submit(collect, c, total, belongs) for c in receivers]
        acked_lists = [f.result(DEADLINE) for f in sending]
        streams = [f.result(DEADLINE) for f in receiving]
    acked = {i for ids in acked_lists for i in ids}
    assert len(acked) == total, "an id was handed out twice"
    # A sender's own session sees its messages too, in the same order as everyone.
    for client, _, _ in senders:
        streams.append(collect(client, total, belongs))
    return acked, streams


def test_concurrent_senders_in_one_room(server: ServerProcess) -> None:
    room = "ordering-room"
    names = server.new_users(6)
    clients = [server.login(name) for name in names]
    for client in clients:
        join(client, room)
    for client in clients:
        client.sync()
        client.take_queued()  # member notices from the joins
    senders = [(c, {"room": room}, f"s{n}") for n, c in enumerate(clients[:4])]
    acked, streams = run_concurrently(senders, clients[4:], lambda m: m.get("room") == room)
    for stream in streams:
        check_stream(stream, acked)
    # History agrees with what was delivered.
    page = clients[4].request({"type": "history", "room": room, "limit": 500})
    assert [m["id"] for m in page["messages"]] == sorted(acked)[-500:]


def test_concurrent_senders_in_one_direct_conversation(server: ServerProcess) -> None:
    alice, bob = server.new_users(2)
    a1, a2, a3 = (server.login(alice) for _ in range(3))
    b1, b2 = server.login(bob), server.login(bob)
    senders = [
        (a1, {"to": bob}, "a1"),
        (a2, {"to": bob}, "a2"),
        (b1, {"to": alice}, "b1"),
    ]

    def in_conversation(message: Frame) -> bool:
        return {message["from"], message.get("to")} == {alice, bob}

    acked, streams = run_concurrently(senders, [a3, b2], in_conversation)
    assert len(streams) == 5
    for stream in streams:
        check_stream(stream, acked)


def test_joining_and_logging_in_during_a_stream_leaves_no_gap_and_no_overlap(
    server: ServerProcess,
) -> None:
    """History sent at join or login, then live messages: together exactly the room's tail."""
    room = "ordering-join"
    names = server.new_users(4)
    senders = [server.login(name) for name in names[:2]]
    for client in senders:
        join(client, room)
    joiner_name, late_name = names[2], names[3]
    setup = server.member(late_name, room)
    setup.close()

    with ThreadPoolExecutor(2) as pool:
        sending = [
            pool.submit(send_many, c, {"room": room}, f"j{n}") for n, c in enumerate(senders)
        ]
        joiner = server.login(joiner_name)
        joined = joiner.request({"type": "join", "room": room})
        assert joined["type"] == "joined"
        join_history = joiner.expect("history", room=room)
        late = server.connect()
        late.login(late_name, password_of(late_name))
        login_history = late.expect("history", room=room)
        acked = {i for f in sending for i in f.result(DEADLINE)}

    for client, page in ((joiner, join_history), (late, login_history)):
        seen = [m["id"] for m in page["messages"]]
        live = [m["id"] for m in collect_until_quiet(client, room)]
        ids = seen + live
        assert all(a < b for a, b in itertools.pairwise(ids)), "overlap or disorder"
        if seen:
            expected = {i for i in acked if i >= seen[0]}
        else:
            expected = {i for i in acked if i >= min(live)}
        assert set(ids) == expected, "a gap between history and live messages"


def collect_until_quiet(client: ChatClient, room: str) -> list[Frame]:
    """The room's messages that have come or come until a ping is answered."""
    return [f for f in client.sync() if f["type"] == "message" and f.get("room") == room]
