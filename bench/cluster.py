"""Ingest and fan-out on PostgreSQL: one server, a one-node cluster, a two-node cluster.

    python -m bench.cluster [--seconds S] [--reps N] [--bus postgres|redis]

The PostgreSQL is the test suite's throwaway one (tests/pg.py: a unix socket, fsync off),
so the figures show what chatsecure and the bus cost, not a disk. Every process (the
database, the nodes, the generators) shares this machine's cores, so a second node adds
work, not capacity, here: the figures say what the cluster costs, not how it scales.
Ingest: 50 senders, each in a room of its own, spread over the nodes. Fan-out: one sender
on node 1 into a room of 100 receivers spread over the nodes. Each figure is the median
of ``--reps`` runs; the output is a small table, also written to bench/results/cluster.md.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.run import Fleet, reduce, say, spec
from bench.servers import ChatServer, cpu_seconds
from chatsecure.storage.db import make_engine, upgrade
from tests.pg import PostgresServer
from tests.redisserver import RedisServer

SENDERS = 50
WINDOW = 16
RECEIVERS = 100
CHARS = 100
RESULTS = Path(__file__).resolve().parent / "results" / "cluster.md"


def _nodes(work: Path, url: str, count: int, cluster: dict[str, Any] | None) -> list[ChatServer]:
    nodes = []
    for n in range(count):
        extra: dict[str, dict[str, Any]] = {"database": {"pool_size": 4, "max_overflow": 8}}
        if cluster is not None:
            extra["cluster"] = {"enabled": True, "node_name": f"node{n + 1}", **cluster}
        nodes.append(ChatServer(work / f"node{n + 1}", extra=extra, database_url=url))
    return nodes


def _cpu(nodes: Sequence[ChatServer]) -> float:
    return sum(cpu_seconds(node.pid) for node in nodes)


def ingest(nodes: Sequence[ChatServer], seconds: float, reps: int) -> dict[str, Any]:
    users = [f"ing{i}" for i in range(SENDERS)]
    for user in users:
        nodes[0].add_users([user], [user])
    fleet = Fleet([spec("chat", nodes[i % len(nodes)].port) for i in range(2)])
    try:
        for i in range(2):
            fleet.ask(i, "login", users=users[i::2])
        for i in range(2):
            fleet.answer(i)
        runs = []
        for _ in range(reps):
            cpu0 = _cpu(nodes)
            for i in range(2):
                fleet.ask(i, "ingest", seconds=seconds, window=WINDOW, chars=CHARS)
            results = [fleet.answer(i) for i in range(2)]
            wall = max(r["seconds"] for r in results)
            acks = sum(r["acks"] for r in results)
            runs.append(
                {
                    "acked_per_s": acks / wall,
                    "nodes_cpu_pct": 100 * (_cpu(nodes) - cpu0) / wall,
                }
            )
            say(f"    ingest: {runs[-1]['acked_per_s']:,.0f} acked/s")
        return reduce(runs)
    finally:
        fleet.close()


def fanout(nodes: Sequence[ChatServer], seconds: float, reps: int) -> dict[str, Any]:
    room = f"r{RECEIVERS}"
    users = [f"r{i}" for i in range(RECEIVERS)]
    nodes[0].add_users([*users, "snd"], [room])
    specs = [spec("chat", nodes[i % len(nodes)].port, slot=i) for i in range(2)]
    fleet = Fleet([*specs, spec("chat", nodes[0].port)], slots=2)
    try:
        for i in range(2):
            fleet.ask(i, "login", users=users[i::2])
        for i in range(2):
            fleet.answer(i)
        fleet.call(2, "login", users=["snd"])
        runs = []
        for _ in range(reps):
            for i in range(2):
                fleet.ask(i, "receive", limit_s=seconds + 60, only=None)
            for i in range(2):
                fleet.answer(i)
            cpu0 = _cpu(nodes)
            sent = fleet.call(
                2, "fanout_send", room=room, seconds=seconds, window=64, chars=CHARS, slots=2
            )
            cpu = _cpu(nodes) - cpu0
            for i in range(2):
                fleet.pipes[i].send(("stop", {}))
            stats = [fleet.answer(i) for i in range(2)]
            wall = sent["end"] - sent["start"]
            deliveries = sum(s["deliveries"] for s in stats)
            runs.append(
                {
                    "deliveries_per_s": deliveries / wall,
                    "complete": float(deliveries == sent["sent"] * RECEIVERS and sent["drained"]),
                    "nodes_cpu_pct": 100 * cpu / wall,
                }
            )
            say(f"    fan-out: {runs[-1]['deliveries_per_s']:,.0f} deliveries/s")
        return reduce(runs)
    finally:
        fleet.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--bus", choices=["postgres", "redis"], default="postgres")
    args = parser.parse_args(argv)
    postgres = PostgresServer()
    postgres.start()
    redis = None
    cluster: dict[str, Any] = {"bus": args.bus}
    if args.bus == "redis":
        redis = RedisServer()
        redis.start()
        cluster["redis_url"] = redis.url
    layouts: list[tuple[str, int, dict[str, Any] | None]] = [
        ("one server (no cluster)", 1, None),
        (f"cluster of 1 ({args.bus} bus)", 1, cluster),
        (f"cluster of 2 ({args.bus} bus)", 2, cluster),
    ]
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="chatsecure-bench-cluster-") as folder:
            for index, (name, count, settings) in enumerate(layouts):
                say(f"  {name}")
                results = {}
                for scenario, run in (("ingest", ingest), ("fanout", fanout)):
                    url = postgres.new_database()
                    engine = make_engine(url)
                    upgrade(engine)
                    engine.dispose()
                    nodes = _nodes(Path(folder) / f"{index}-{scenario}", url, count, settings)
                    try:
                        for node in nodes:
                            node.start()
                        results[scenario] = run(nodes, args.seconds, args.reps)
                    finally:
                        for node in nodes:
                            node.stop()
                rows.append((name, results))
    finally:
        if redis is not None:
            redis.remove()
        postgres.stop()
    lines = [
        f"| PostgreSQL, {args.reps} runs of {args.seconds:g} s, median "
        "| ingest acked/s | nodes' CPU "
        f"| fan-out to {RECEIVERS}, deliveries/s | complete | nodes' CPU |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        i, f = r["ingest"], r["fanout"]
        lines.append(
            f"| {name} | {i['acked_per_s']:,.0f} | {i['nodes_cpu_pct']:.0f}% "
            f"| {f['deliveries_per_s']:,.0f} | {'yes' if f['complete'] == 1 else 'no'} "
            f"| {f['nodes_cpu_pct']:.0f}% |"
        )
    table = "\n".join(lines)
    print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
