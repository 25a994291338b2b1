"""Clusters of real server processes on one real PostgreSQL, with either bus, for the tests.

``Cluster`` starts its nodes through the ``server_factory`` (each its own folder, config
and port) on one new database; accounts are made through the first node's admin tool.
Nodes beat fast (``HEARTBEAT``), so a dead node is noticed within about two seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tests.e2e.client import ChatClient, Frame
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import send_direct, send_room

HEARTBEAT = 0.2
NODE_TIMEOUT = 1.5
# A dead node's users go offline elsewhere within node_timeout + a heartbeat (docs/cluster.md),
# plus the time to read and tell it on a busy machine.
DEAD_NODE_NOTICED = NODE_TIMEOUT + HEARTBEAT + 2.0
DELIVERY_TIMEOUT = 20.0


class Cluster:
    def __init__(self, factory: ServerFactory, url: str, bus: str, redis_url: str | None) -> None:
        self.factory = factory
        self.url = url
        self.bus = bus
        self.redis_url = redis_url
        self.nodes: list[ServerProcess] = []

    def add_node(self, **sections: Mapping[str, Any]) -> ServerProcess:
        """Start another node; ``sections`` add to its config (e.g. ``auth={...}``)."""
        name = f"node{len(self.nodes) + 1}"
        cluster: dict[str, Any] = {"redis_url": self.redis_url} if self.redis_url else {}
        node = self.factory(
            {
                **sections,
                "database": {"url": self.url, "pool_size": 4, "max_overflow": 8},
                "cluster": {
                    "enabled": True,
                    "node_name": name,
                    "bus": self.bus,
                    "heartbeat_interval": HEARTBEAT,
                    "node_timeout": NODE_TIMEOUT,
                    **cluster,
                },
            }
        )
        assert f"cluster node {name} started ({self.bus} bus)" in node.output()
        self.nodes.append(node)
        return node

    def users(self, count: int) -> list[str]:
        return self.nodes[0].new_users(count)


def messages_until(
    client: ChatClient, expected: Iterable[int], timeout: float = DELIVERY_TIMEOUT
) -> list[int]:
    """The ids of the ``message`` frames the client got, in order, until it has all of
    ``expected``; then whatever came with them too (a sync barrier)."""
    wanted = set(expected)
    got: list[int] = []
    deadline = time.monotonic() + timeout
    while not wanted <= set(got):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"missing {sorted(wanted - set(got))[:10]}... of {len(wanted)}"
        got.append(int(client.expect("message", timeout=remaining)["id"]))
    got += [int(f["id"]) for f in client.sync() if f["type"] == "message"]
    return got


def assert_in_order_without_gaps(got: list[int], expected: Iterable[int]) -> None:
    """Strictly increasing (no duplicate, nothing out of order) and exactly ``expected``."""
    assert got == sorted(set(got)), "out of order or repeated"
    assert set(got) == set(expected)


def send_concurrently(
    senders: list[ChatClient], send: Callable[[ChatClient, int], int], count: int
) -> list[list[int]]:
    """Each sender sends ``count`` messages in its own thread; the acknowledged ids."""
    acked: list[list[int]] = [[] for _ in senders]
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for n in range(count):
                acked[index].append(send(senders[index], n))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DELIVERY_TIMEOUT * 2)
    assert not failures, failures
    return acked


def to_room(room: str) -> Callable[[ChatClient, int], int]:
    return lambda client, n: send_room(client, room, f"{client.user} {n}")


def to_user(user: str) -> Callable[[ChatClient, int], int]:
    return lambda client, n: send_direct(client, user, f"{client.user} {n}")


def presence(frames: list[Frame], user: str) -> list[str]:
    return [f["status"] for f in frames if f["type"] == "presence" and f["user"] == user]
