"""Several real server nodes on one real PostgreSQL, with each bus (LISTEN/NOTIFY, Redis).

Every receiver must see each conversation's messages in strictly increasing id order,
each once, none missing, whichever node stored them; presence and membership must
cross nodes; a node killed mid-load must lose nothing it acknowledged, and neither must
a restart of the bus; disabling an account ends its sessions on every node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from chatsecure.server.cluster.pgbus import application_name
from tests.e2e.client import ChatClient, FrameTimeout
from tests.e2e.cluster import (
    DEAD_NODE_NOTICED,
    Cluster,
    assert_in_order_without_gaps,
    messages_until,
    presence,
    send_concurrently,
    to_room,
    to_user,
)
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import history, join, send_direct, send_room
from tests.pg import PostgresServer
from tests.redisserver import RedisServer, RedisUnavailableError
from tests.serverproc import password_of

ROOM = "crowd"
PER_SENDER = 40


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
        server.start()
    except RedisUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.remove()


@pytest.fixture(params=["postgres", "redis"])
def cluster(
    request: pytest.FixtureRequest, postgres: PostgresServer, server_factory: ServerFactory
) -> Cluster:
    bus = request.param
    redis_url = request.getfixturevalue("redis_server").url if bus == "redis" else None
    return Cluster(server_factory, postgres.new_database(), bus, redis_url)


def _members(cluster: Cluster, users: list[str], room: str = ROOM) -> list[ChatClient]:
    """users[i] logged in on node i (round robin) and in ``room``."""
    clients = []
    for index, user in enumerate(users):
        client = cluster.nodes[index % len(cluster.nodes)].login(user)
        join(client, room)
        clients.append(client)
    return clients


def test_chat_presence_and_disable_across_three_nodes(
    cluster: Cluster, postgres: PostgresServer
) -> None:
    nodes = [cluster.add_node() for _ in range(3)]
    users = cluster.users(7)
    clients = _members(cluster, users[:4])  # the fourth is a second member on node 1

    # Three senders on three nodes at once: every member sees every message, in order.
    acked = send_concurrently(clients[:3], to_room(ROOM), PER_SENDER)
    every = [i for ids in acked for i in ids]
    for client in clients:
        assert_in_order_without_gaps(messages_until(client, every), every)
    page = history(clients[3], room=ROOM, limit=200)["messages"]
    assert [m["id"] for m in page] == sorted(every)

    # Direct messages from nodes 2 and 3 to the user on node 1, and one back.
    to_first = send_concurrently(clients[1:3], to_user(users[0]), 10)
    direct = [i for ids in to_first for i in ids]
    assert_in_order_without_gaps(messages_until(clients[0], direct), direct)
    for sender, ids in zip(clients[1:3], to_first, strict=True):
        assert_in_order_without_gaps(messages_until(sender, ids), ids)
    back = send_direct(clients[0], users[2], "back to node 3")
    assert clients[2].expect("message", id=back)["from"] == users[0]

    # Membership and presence of a user on node 2, as the watcher on node 1 sees them; the
    # user's second session, on node 1, follows the room it joined on node 2.
    watching, subject = clients[0], users[4]
    joining = nodes[1].login(subject)
    also = nodes[0].login(subject)
    join(joining, ROOM)
    assert watching.expect("member", user=subject) == {
        "type": "member",
        "room": ROOM,
        "user": subject,
        "event": "joined",
    }
    who = watching.request({"type": "who", "room": ROOM})
    assert {"user": subject, "online": True, "role": "member"} in who["members"]
    # Its login and its join may reach node 1 together, and be told as one "online".
    assert presence(watching.sync(), subject) in ([], ["online"])
    message = send_room(also, ROOM, "from node 1")
    assert joining.expect("message", id=message)["text"] == "from node 1"
    assert also.expect("message", id=message)["text"] == "from node 1"
    also.close()  # the account is still online on node 2: no news
    assert presence(watching.sync(), subject) == []
    joining.close()
    assert watching.expect("presence", user=subject)["status"] == "offline"
    back_again = nodes[1].login(subject)
    assert watching.expect("presence", user=subject)["status"] == "online"
    back_again.request({"type": "leave", "room": ROOM})
    assert watching.expect("member", user=subject)["event"] == "left"

    # Disabling an account on node 1 ends its sessions on node 1 and node 3.
    disabled = users[5]
    sessions = [nodes[0].login(disabled), nodes[2].login(disabled)]
    nodes[0].admin("disable", disabled)
    for client in sessions:
        client.expect_bye("account_disabled", timeout=10)

    # A membership whose news never came (stored behind the nodes' backs) is followed
    # once the nodes read memberships again.
    lonely, talker = users[6], clients[1]
    reader = nodes[0].login(lonely)
    join(talker, "quiet")
    with psycopg.connect(postgres.dsn(str(make_url(cluster.url).database))) as conn:
        conn.execute(
            "INSERT INTO memberships (account_id, room_id, joined_at) SELECT a.id, r.id, now() "
            "FROM accounts a, rooms r WHERE a.name = %s AND r.name = 'quiet'",
            (lonely,),
        )
    deadline = time.monotonic() + 10
    while True:
        said = send_room(talker, "quiet", "anyone?")
        try:
            assert reader.expect("message", timeout=0.5, id=said)["room"] == "quiet"
            break
        except FrameTimeout:
            assert time.monotonic() < deadline, "the membership was never followed"


@pytest.mark.parametrize("cluster", ["postgres"], indirect=True)  # the bus plays no part
def test_guesses_from_one_address_split_over_two_nodes_meet_one_limit(cluster: Cluster) -> None:
    nodes = [cluster.add_node(auth={"max_failures_per_address": 4}) for _ in range(2)]
    users = cluster.users(7)
    replies = []
    # One guess per account (so only the address's limit applies), the nodes in turn.
    for n, user in enumerate(users):
        password = password_of(user) if n == len(users) - 1 else "wrong password"
        client = nodes[n % 2].connect()
        replies.append(client.request({"type": "login", "username": user, "password": password}))
    assert [reply["code"] for reply in replies] == ["auth_failed"] * 4 + ["rate_limited"] * 3


def _stored_since(client: ChatClient, first: int) -> set[int]:
    """The ids of ``ROOM``'s stored messages from ``first`` on, read page by page."""
    stored: set[int] = set()
    after, more = first - 1, True
    while more:
        page = history(client, room=ROOM, after=after, limit=500)
        stored |= {m["id"] for m in page["messages"]}
        after, more = max(stored, default=after), page["more"]
    return stored


def _cut_the_bus(cluster: Cluster, postgres: PostgresServer, redis: RedisServer | None) -> None:
    """Restart redis-server, or end every node's LISTEN connection."""
    if redis is not None:
        redis.restart()
        return
    names = [application_name(node.settings["cluster"]["node_name"]) for node in cluster.nodes]
    with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = ANY(%s)",
            (names,),
        ).fetchall()
    assert len(ended) == len([node for node in cluster.nodes if node.running])


class Load:
    """Senders sending to ``ROOM`` in threads until stopped (or their node dies)."""

    def __init__(self, senders: list[ChatClient]) -> None:
        self.acked: list[list[int]] = [[] for _ in senders]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, args=(client, ids))
            for client, ids in zip(senders, self.acked, strict=True)
        ]
        for thread in self._threads:
            thread.start()

    def _send(self, client: ChatClient, acked: list[int]) -> None:
        for n in range(MAX_LOAD):
            if self._stop.is_set():
                return
            try:
                acked.append(send_room(client, ROOM, f"{client.user} {n}"))
            except (AssertionError, OSError):
                return  # its node was killed

    def stop(self) -> list[int]:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return [i for ids in self.acked for i in ids]


MAX_LOAD = 2000


def test_a_bus_restart_and_a_killed_node_lose_nothing(
    cluster: Cluster, postgres: PostgresServer, request: pytest.FixtureRequest
) -> None:
    redis = request.getfixturevalue("redis_server") if cluster.bus == "redis" else None
    nodes = [cluster.add_node() for _ in range(3)]
    users = cluster.users(4)
    clients = _members(cluster, users)  # a sender on every node, a watcher on node 1

    # The bus goes away and comes back while all three nodes store and deliver.
    load = Load(clients[:3])
    time.sleep(0.7)
    _cut_the_bus(cluster, postgres, redis)
    time.sleep(1.0)
    every = load.stop()
    for client in clients:
        assert_in_order_without_gaps(messages_until(client, every), every)
    for node in nodes:
        assert "lost the" in node.output(), node.output()[-2000:]

    # Node 3 is killed mid-load: nothing it acknowledged is lost, the others go on.
    load = Load(clients[:3])
    time.sleep(1.0)
    nodes[2].kill()
    killed_at = time.monotonic()
    time.sleep(0.5)
    acked = load.stop()
    assert load.acked[2], "the killed node's sender acknowledged nothing"
    # The killed node's user goes offline for the others within the documented bound.
    bound = killed_at + DEAD_NODE_NOTICED - time.monotonic()
    clients[3].expect("presence", timeout=bound, user=users[2], status="offline")
    for client in (clients[0], clients[1], clients[3]):
        got = messages_until(client, acked)
        assert got == sorted(set(got)), "out of order or repeated"
    assert set(acked) <= _stored_since(clients[3], min(acked))
    after = send_room(clients[1], ROOM, "still serving")
    assert clients[0].expect("message", id=after)["text"] == "still serving"

    # A graceful stop delivers what its node acknowledged before it says goodbye.
    last = clients[1]
    for n in range(50):
        last.send({"type": "send", "room": ROOM, "text": f"last {n}", "req": f"last{n}"})
    # Stopped once it has taken some in: what it never read it never acknowledged.
    first = last.expect("ok")  # some may be refused: the sender is over its rate
    nodes[1].stop()
    frames = [first, *last.wait_closed()]
    acknowledged = {f["id"] for f in frames if f["type"] == "ok"}
    assert acknowledged
    assert acknowledged <= {f["id"] for f in frames if f["type"] == "message"}
