"""The scenarios: set up a server, drive it from generator processes, reduce to figures.

Every figure is the median of ``reps`` measurements taken on one server start (logins
are the slow part of set-up). Fan-out and latency run against chatsecure's JSON port,
chatsecure's IRC port and ngircd in the same invocation, with the same room sizes and
message sizes, so each has a ratio; both IRC servers are driven by the same IRC client
code, and ngircd's sender is an operator with user mode +F (no flood throttling).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from bench import worker
from bench.search import search
from bench.servers import (
    HOST,
    OPER_NAME,
    OPER_PASSWORD,
    PASSWORD,
    ChatServer,
    IrcServer,
    context_switches,
    cpu_seconds,
    rss_kib,
)
from chatsecure.passwords import hash_password, verify_password

CTX = mp.get_context("spawn")

# The servers the fan-out and latency scenarios run on, in this order: chatsecure's JSON
# port, its IRC port, the peer.
ROOM_SERVERS = ("chatsecure", "chatsecure-irc", "ngircd")


@dataclass(frozen=True)
class Scale:
    """How big each scenario is; ``default`` for make bench, ``full`` for the docs."""

    name: str
    reps: int
    fanout_sizes: tuple[int, ...]
    fanout_seconds: float
    window: int
    latency_rates: tuple[int, ...]
    latency_seconds: float
    ingest_seconds: float
    storm_logins: int
    storm_chatters: int
    history_messages: int
    idle_connections: int
    chars: int = 100
    search: tuple[int, int] = (100_000, 200)  # messages stored, queries timed per case


SCALES = {
    "smoke": Scale(
        "smoke", 1, (5, 10), 0.5, 8, (20, 100), 0.5, 0.5, 4, 3, 2_000, 20, search=(2_000, 20)
    ),
    "default": Scale(
        "default", 3, (100, 1000), 2.0, 100, (20, 100), 4.0, 3.0, 40, 20, 100_000, 500
    ),
    "full": Scale(
        "full",
        5,
        (100, 1000),
        5.0,
        100,
        (20, 100),
        20.0,
        5.0,
        200,
        20,
        1_000_000,
        10_000,
        search=(1_000_000, 1000),
    ),
}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Fleet:
    """Generator processes, each a ``worker.Agent`` over a pipe."""

    def __init__(self, specs: Sequence[dict[str, Any]], slots: int = 0) -> None:
        self.marks = CTX.Array("q", max(slots, 1), lock=False)
        self.pipes: list[Pipe] = []
        self.procs: list[Any] = []
        for spec in specs:
            parent, child = CTX.Pipe()
            proc = CTX.Process(target=worker.main, args=(child, spec, self.marks), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def ask(self, index: int, name: str, **kwargs: Any) -> None:
        self.pipes[index].send((name, kwargs))

    def answer(self, index: int, timeout: float = 1200.0) -> dict[str, Any]:
        if not self.pipes[index].poll(timeout):
            raise TimeoutError(f"generator {index} did not answer in {timeout}s")
        reply: dict[str, Any] = self.pipes[index].recv()
        if "error" in reply:
            raise RuntimeError(f"generator {index}: {reply['error']}")
        return reply

    def call(self, index: int, name: str, **kwargs: Any) -> dict[str, Any]:
        self.ask(index, name, **kwargs)
        return self.answer(index)

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def close(self) -> None:
        for index, pipe in enumerate(self.pipes):
            try:
                pipe.send(("close", {}))
                self.answer(index, 10)
            except (OSError, EOFError, TimeoutError):
                pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def spec(dialect: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"dialect": dialect, "host": HOST, "port": port, "password": PASSWORD, **extra}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def usable_cores() -> int:
    """The cores this process (and the servers it starts) may run on."""
    return len(os.sched_getaffinity(0))


def bcrypt_parallel_rate(rounds: int, checks: int = 8) -> float:
    """Checks per second with one thread per core, right now: what the machine gives."""
    stored = hash_password(PASSWORD, rounds)
    cores = usable_cores()
    with ThreadPoolExecutor(cores) as pool:
        t = time.perf_counter()
        list(pool.map(lambda _: verify_password(PASSWORD, stored), range(checks)))
        return checks / (time.perf_counter() - t)


def bcrypt_check_seconds(rounds: int, tries: int = 3) -> float:
    """One bcrypt check at ``rounds`` in this process, median of ``tries``."""
    stored = hash_password(PASSWORD, rounds)
    times = []
    for _ in range(tries):
        t = time.perf_counter()
        verify_password(PASSWORD, stored)
        times.append(time.perf_counter() - t)
    return median(times)


# -- fan-out and latency --------------------------------------------------------------


def _certificate_folder(work: Path) -> Path:
    """A folder with the certificate a chatsecure of this run made, for ngircd to use the
    same one; if none ran yet, a server's folder made for its certificate alone."""
    for name in ("chat-rooms", "chat-rooms-irc"):
        if (work / name / "server.pem").exists():
            return work / name
    return ChatServer(work / "chat-rooms").directory


def room_setup(
    kind: str, work: Path, sizes: Sequence[int], code: Path | None = None
) -> tuple[Any, Fleet, list[str]]:
    """A ``kind`` server (of ``ROOM_SERVERS``) with max(sizes) receivers in room r<max>,
    the first k also in r<k>, and the sender ``snd`` in every room.

    ``code``: for chatsecure, another checkout's folder to import it from.
    """
    big = max(sizes)
    users = [f"r{i}" for i in range(big)]
    channels = {u: [f"r{n}" for n in sizes if i < n] for i, u in enumerate(users)}
    channels["snd"] = [f"r{n}" for n in sizes]
    server: Any
    if kind == "ngircd":
        chat_dir = _certificate_folder(work)
        server = IrcServer(work / "ngircd", chat_dir / "server.pem", chat_dir / "server.key")
        server.start()
        port = server.port
    else:
        irc = kind == "chatsecure-irc"
        server = ChatServer(work / ("chat-rooms-irc" if irc else "chat-rooms"), irc=irc)
        server.add_users(users, [f"r{big}"])
        server.add_users(["snd"], channels["snd"])
        for n in sizes:
            if n != big:
                server.join(users[:n], f"r{n}")
        server.start(code)
        port = server.irc_port if irc else server.port
    dialect = "chat" if kind == "chatsecure" else "irc"
    specs = [spec(dialect, port, slot=i, channels=channels) for i in range(2)]
    specs.append(spec(dialect, port, channels=channels))
    fleet = Fleet(specs, slots=2)
    t = time.monotonic()
    for i in range(2):
        fleet.ask(i, "login", users=users[i::2])
    for i in range(2):
        fleet.answer(i)
    fleet.call(2, "login", users=["snd"])
    say(f"  {kind}: {big} receivers logged in ({time.monotonic() - t:.1f}s)")
    if kind == "ngircd":
        granted = fleet.call(2, "oper", operator=OPER_NAME, password=OPER_PASSWORD)
        say(f"  ngircd: the sender is an operator with +F ({granted['mode']})")
    return server, fleet, users


def _start_receiving(fleet: Fleet, only: list[list[str]] | None, limit_s: float) -> None:
    for i in range(2):
        fleet.ask(i, "receive", limit_s=limit_s, only=only[i] if only else None)
    for i in range(2):
        fleet.answer(i)


def _stop_receiving(fleet: Fleet) -> list[dict[str, Any]]:
    for i in range(2):
        fleet.pipes[i].send(("stop", {}))
    return [fleet.answer(i) for i in range(2)]


def fanout_once(
    fleet: Fleet, server: Any, users: list[str], n: int, scale: Scale
) -> dict[str, float]:
    only = [users[:n][0::2], users[:n][1::2]]
    _start_receiving(fleet, only, scale.fanout_seconds + 60)
    cpu0, gen0 = cpu_seconds(server.pid), fleet.cpu()
    sent = fleet.call(
        2,
        "fanout_send",
        room=f"r{n}",
        seconds=scale.fanout_seconds,
        window=scale.window,
        chars=scale.chars,
        slots=2,
    )
    cpu1, gen1 = cpu_seconds(server.pid), fleet.cpu()
    stats = _stop_receiving(fleet)
    wall = sent["end"] - sent["start"]
    deliveries = sum(s["deliveries"] for s in stats)
    return {
        "deliveries_per_s": deliveries / wall,
        "messages_per_s": sent["sent"] / wall,
        "complete": float(
            deliveries == sent["sent"] * n
            and sent["drained"]
            and not any(s["disorder"] for s in stats)
        ),
        "server_cpu_pct": 100 * (cpu1 - cpu0) / wall,
        "generator_cpu_pct": 100 * (gen1 - gen0) / wall,
    }


def latency_once(fleet: Fleet, server: Any, *, n: int, rate: int, scale: Scale) -> dict[str, float]:
    """Open-loop sends into the room of ``n``: the time to its first and last receiver.

    Server and generator share the machine's cores, so the walk of one message to all
    ``n`` cannot take less than both sides' CPU per message over the cores
    (``cpu_bound_ms``); the receivers' context switches per delivery say how often
    they left the CPU (asleep, or preempted) for each message they took.
    """
    receivers = [proc.pid for proc in fleet.procs[:2]]
    _start_receiving(fleet, None, scale.latency_seconds + 60)
    cpu0, gen0 = cpu_seconds(server.pid), fleet.cpu()
    switches0 = sum(map(context_switches, receivers))
    sent = fleet.call(
        2, "rate_send", room=f"r{n}", rate=rate, seconds=scale.latency_seconds, chars=scale.chars
    )
    total = sent["sent"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and min(fleet.marks[0], fleet.marks[1]) < total:
        time.sleep(0.01)
    cpu1, gen1 = cpu_seconds(server.pid), fleet.cpu()
    switches = sum(map(context_switches, receivers)) - switches0
    stats = _stop_receiving(fleet)
    first, last = [], []
    for seq, t in sent["times"].items():
        if all(seq in s["last"] for s in stats):
            first.append(min(s["first"][seq] for s in stats) - t)
            last.append(max(s["last"][seq] for s in stats) - t)
    deliveries = sum(s["deliveries"] for s in stats)
    if any(s["disorder"] for s in stats):  # first and last arrivals assume order
        raise RuntimeError("a receiver saw the room's messages out of order")
    wall = sent["end"] - sent["start"]
    return {
        "first_p50_ms": 1000 * percentile(first, 0.5),
        "first_p99_ms": 1000 * percentile(first, 0.99),
        "last_p50_ms": 1000 * percentile(last, 0.5),
        "last_p99_ms": 1000 * percentile(last, 0.99),
        "delivered_pct": 100 * deliveries / (total * n),
        "server_cpu_us_per_delivery": 1e6 * (cpu1 - cpu0) / max(deliveries, 1),
        "generator_cpu_us_per_delivery": 1e6 * (gen1 - gen0) / max(deliveries, 1),
        "cpu_bound_ms": 1000 * (cpu1 - cpu0 + gen1 - gen0) / max(total, 1) / usable_cores(),
        "receiver_switches_per_delivery": switches / max(deliveries, 1),
        "server_cpu_pct": 100 * (cpu1 - cpu0) / wall,
        "generator_cpu_pct": 100 * (gen1 - gen0) / wall,
    }


def rooms_scenarios(work: Path, scale: Scale, servers: Sequence[str]) -> dict[str, Any]:
    """Fan-out and latency on each of ``servers`` in turn, the same rooms and messages."""
    results: dict[str, Any] = {}
    for kind in servers:
        server, fleet, users = room_setup(kind, work, scale.fanout_sizes)
        try:
            for n in scale.fanout_sizes:
                runs = []
                for rep in range(scale.reps):
                    runs.append(fanout_once(fleet, server, users, n, scale))
                    say(
                        f"  {kind} fan-out N={n} run {rep + 1}: "
                        f"{runs[-1]['deliveries_per_s']:,.0f} deliveries/s "
                        f"(server CPU {runs[-1]['server_cpu_pct']:.0f}%, "
                        f"generator {runs[-1]['generator_cpu_pct']:.0f}%)"
                    )
                results.setdefault(f"fanout_{n}", {})[kind] = reduce(runs)
            big = max(scale.fanout_sizes)
            for rate in scale.latency_rates:
                runs = []
                for rep in range(scale.reps):
                    runs.append(latency_once(fleet, server, n=big, rate=rate, scale=scale))
                    say(
                        f"  {kind} latency {rate}/s into {big}, run {rep + 1}: last p99 "
                        f"{runs[-1]['last_p99_ms']:.1f} ms, delivered "
                        f"{runs[-1]['delivered_pct']:.2f}%"
                    )
                results.setdefault(f"latency_{rate}", {})[kind] = reduce(runs)
        finally:
            fleet.close()
            server.stop()
    return results


def reduce(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The median of each figure, and the runs it came from."""
    out: dict[str, Any] = {k: median([r[k] for r in runs]) for k in runs[0]}
    out["runs"] = runs
    return out


# -- ingest ---------------------------------------------------------------------------


class IngestRig:
    """A server with 50 senders logged in, each in a room of its own (the ingest scenario)."""

    SENDERS = 50
    WINDOW = 16  # sends each sender keeps unacknowledged

    def __init__(self, work: Path, code: Path | None = None) -> None:
        self.server = ChatServer(work)
        users = [f"ing{i}" for i in range(self.SENDERS)]
        for u in users:
            self.server.add_users([u], [u])
        self.server.start(code)
        self.fleet = Fleet([spec("chat", self.server.port) for _ in range(2)])
        for i in range(2):
            self.fleet.ask(i, "login", users=users[i::2])
        for i in range(2):
            self.fleet.answer(i)

    def run(self, seconds: float, chars: int) -> dict[str, float]:
        """One run: acked messages per second, and the server's and generator's CPU."""
        cpu0, gen0 = cpu_seconds(self.server.pid), self.fleet.cpu()
        for i in range(2):
            self.fleet.ask(i, "ingest", seconds=seconds, window=self.WINDOW, chars=chars)
        res = [self.fleet.answer(i) for i in range(2)]
        wall = max(r["seconds"] for r in res)
        acks = sum(r["acks"] for r in res)
        cpu1, gen1 = cpu_seconds(self.server.pid), self.fleet.cpu()
        return {
            "acked_per_s": acks / wall,
            "server_cpu_pct": 100 * (cpu1 - cpu0) / wall,
            "server_cpu_us_per_message": 1e6 * (cpu1 - cpu0) / max(acks, 1),
            "generator_cpu_pct": 100 * (gen1 - gen0) / wall,
        }

    def close(self) -> None:
        self.fleet.close()
        self.server.stop()


def ingest(work: Path, scale: Scale) -> dict[str, Any]:
    rig = IngestRig(work / "chat-ingest")
    try:
        runs = []
        for rep in range(scale.reps):
            runs.append(rig.run(scale.ingest_seconds, scale.chars))
            say(
                f"  ingest run {rep + 1}: {runs[-1]['acked_per_s']:,.0f} acked msgs/s "
                f"(server CPU {runs[-1]['server_cpu_pct']:.0f}%, "
                f"generator {runs[-1]['generator_cpu_pct']:.0f}%)"
            )
        return {"chatsecure": reduce(runs)}
    finally:
        rig.close()


# -- login storm ----------------------------------------------------------------------


def login_storm(work: Path, scale: Scale, rounds: int = 12) -> dict[str, Any]:
    server = ChatServer(work / "chat-storm", bcrypt_rounds=rounds)
    chatters = [f"ch{i}" for i in range(scale.storm_chatters)]
    server.add_users(chatters, ["storm"])
    runs = []
    check = bcrypt_check_seconds(rounds)
    cores = usable_cores()
    bound = cores / check
    say(f"  one bcrypt check at cost {rounds}: {check * 1000:.0f} ms -> bound {bound:.2f} logins/s")
    stormers = [f"st{i}" for i in range(scale.storm_logins)]
    server.add_users(stormers, ["lobby"])
    server.start()
    fleet = Fleet([spec("chat", server.port)])
    try:
        fleet.call(0, "login", users=chatters)
        for rep in range(min(scale.reps, 3)):  # each run is ~25 s of bcrypt at full scale
            storm = Fleet([spec("chat", server.port)])
            try:
                storm.call(0, "login", users=stormers, connect_only=True)
                expected = scale.storm_logins * check / cores
                fleet.ask(0, "chat", room="storm", rate=5.0, seconds=expected * 1.6 + 3, chars=64)
                time.sleep(1.0)
                machine_rate = bcrypt_parallel_rate(rounds)
                cpu0, gen0, t0 = cpu_seconds(server.pid), fleet.cpu() + storm.cpu(), time.time()
                result = storm.call(0, "storm")
                cpu1, gen1, t1 = cpu_seconds(server.pid), fleet.cpu() + storm.cpu(), time.time()
                chat = fleet.answer(0)
            finally:
                storm.close()
            start, end = result["start"], max(result["welcomed"])
            during = [lat for t, lat in chat["samples"] if start <= t <= end]
            before = [lat for t, lat in chat["samples"] if t < start]
            per_s = len(result["welcomed"]) / (end - start)
            runs.append(
                {
                    "logins_per_s": per_s,
                    "bcrypt_bound_per_s": bound,
                    "of_bound_pct": 100 * per_s / bound,
                    "machine_bcrypt_per_s": machine_rate,
                    "chatters_p99_ms": 1000 * percentile(during, 0.99),
                    "chatters_p50_ms": 1000 * percentile(during, 0.5),
                    "chatters_p99_before_ms": 1000 * percentile(before, 0.99),
                    "chatter_deliveries": float(len(during)),
                    "server_cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0),
                    "generator_cpu_pct": 100 * (gen1 - gen0) / (t1 - t0),
                }
            )
            say(
                f"  login storm run {rep + 1}: {per_s:.2f} logins/s "
                f"({runs[-1]['of_bound_pct']:.0f}% of bound), chatters p99 "
                f"{runs[-1]['chatters_p99_ms']:.1f} ms "
                f"(before the storm {runs[-1]['chatters_p99_before_ms']:.1f} ms; server CPU "
                f"{runs[-1]['server_cpu_pct']:.0f}%, generator "
                f"{runs[-1]['generator_cpu_pct']:.0f}%)"
            )
        return {"chatsecure": reduce(runs)}
    finally:
        fleet.close()
        server.stop()


# -- history and export ---------------------------------------------------------------


BARE_EXPORT = r"""
import json, sqlite3, sys, time
from datetime import datetime, timezone
db, out = sys.argv[1], sys.argv[2]
enc = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
def ts(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"
con = sqlite3.connect(db)
rows = con.execute("SELECT m.id, m.ts_ms, m.sender_name, m.text, r.name, m.recipient_name "
                   "FROM messages m LEFT JOIN rooms r ON r.id = m.room_id ORDER BY m.id")
with open(out, "w", encoding="utf-8") as f:
    for i, t, s, text, room, to in rows:
        if room is not None:
            o = {"id": i, "ts": ts(t), "from": s, "room": room, "text": text}
        else:
            o = {"id": i, "ts": ts(t), "from": s, "to": to, "text": text}
        f.write(enc(o) + "\n")
"""


def history_and_export(work: Path, scale: Scale) -> dict[str, Any]:
    server = ChatServer(work / "chat-history")
    rooms = [f"h{i}" for i in range(40)]
    server.add_users(["writer"], rooms)
    server.add_users(["reader"], rooms[:20])
    t = time.monotonic()
    server.fill_messages("writer", rooms, scale.history_messages, scale.chars)
    say(f"  {scale.history_messages:,} messages stored in {time.monotonic() - t:.1f}s")
    results: dict[str, Any] = {}
    check = bcrypt_check_seconds(server.rounds)
    server.start()
    fleet = Fleet([spec("chat", server.port)])
    try:
        runs = []
        for rep in range(max(scale.reps, 3)):
            r = fleet.call(0, "history", user="reader", rooms=20)
            total = r["history"] - r["start"]
            runs.append(
                {
                    "login_to_last_history_ms": 1000 * total,
                    "bcrypt_ms": 1000 * check,
                    "server_ms_minus_bcrypt": 1000 * (total - check),
                    "welcome_to_last_history_ms": 1000 * (r["history"] - r["welcome"]),
                }
            )
            say(
                f"  history run {rep + 1}: {runs[-1]['server_ms_minus_bcrypt']:.1f} ms "
                f"after bcrypt ({runs[-1]['welcome_to_last_history_ms']:.1f} ms after welcome)"
            )
        results["history"] = {"chatsecure": reduce(runs)}
    finally:
        fleet.close()
        server.stop()
    runs = []
    for rep in range(min(scale.reps, 3)):
        out = work / "export.jsonl"
        bare = work / "bare.jsonl"
        for path in (out, bare):
            path.unlink(missing_ok=True)
        t = time.monotonic()
        subprocess.run(
            [sys.executable, "-c", BARE_EXPORT, str(server.db_path), str(bare)],
            check=True,
            timeout=1200,
        )
        bare_s = time.monotonic() - t
        t = time.monotonic()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "chatsecure-admin"),
                "--config",
                str(server.config),
                "export",
                "--user",
                "writer",
                "--format",
                "jsonl",
                "--output",
                str(out),
            ],
            check=True,
            timeout=1200,
            capture_output=True,
        )
        export_s = time.monotonic() - t
        same = out.read_bytes() == bare.read_bytes()
        runs.append(
            {
                "export_s": export_s,
                "bare_sqlite3_s": bare_s,
                "ratio": export_s / bare_s,
                "identical_output": float(same),
            }
        )
        say(
            f"  export run {rep + 1}: {export_s:.2f}s vs bare sqlite3 {bare_s:.2f}s "
            f"= {runs[-1]['ratio']:.2f}x (identical bytes: {same})"
        )
    results["export"] = {"chatsecure": reduce(runs)}
    return results


# -- idle -----------------------------------------------------------------------------


def idle(work: Path, scale: Scale) -> dict[str, Any]:
    server = ChatServer(work / "chat-idle")
    users = [f"idle{i}" for i in range(scale.idle_connections)]
    # Groups of ten: one room of everyone would make each login announce itself to all.
    for first in range(0, len(users), 10):
        server.add_users(users[first : first + 10], [f"g{first // 10}"])
    server.start()
    time.sleep(1.0)
    rss0 = rss_kib(server.pid)
    procs = 2
    sources = [f"127.0.0.{i}" for i in range(2, 12)]
    fleet = Fleet([spec("chat", server.port) for _ in range(procs)])
    try:
        t = time.monotonic()
        for i in range(procs):
            fleet.ask(i, "login", users=users[i::procs], sources=sources)
        for i in range(procs):
            fleet.answer(i)
        say(f"  {len(users):,} idle connections logged in ({time.monotonic() - t:.0f}s)")
        time.sleep(2.0)
        runs = []
        for rep in range(scale.reps):
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            time.sleep(5.0)
            cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
            rss1 = rss_kib(server.pid)
            runs.append(
                {
                    "kib_per_connection": (rss1 - rss0) / len(users),
                    "server_rss_mib": rss1 / 1024,
                    "idle_cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0),
                }
            )
            say(
                f"  idle run {rep + 1}: {runs[-1]['kib_per_connection']:.1f} KiB/connection, "
                f"CPU {runs[-1]['idle_cpu_pct']:.2f}%"
            )
        return {"chatsecure": reduce(runs)}
    except Exception as exc:
        raise RuntimeError(f"{exc}; server log ends:\n{server.log.read_text()[-1500:]}") from exc
    finally:
        fleet.close()
        server.stop()


# -- the suite ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kib / 2**20, 1),
        "python": sys.version.split()[0],
        "loadavg_start": os.getloadavg(),
    }


# Each scenario gets the folder, the scale and the servers of the rooms scenarios.
def _file_transfer(work: Path, scale: Scale) -> dict[str, Any]:
    from bench.files import file_transfer  # noqa: PLC0415 - bench.files builds on this module

    return file_transfer(work, scale)


SCENARIOS: dict[str, Callable[[Path, Scale, Sequence[str]], dict[str, Any]]] = {
    "rooms": rooms_scenarios,
    "ingest": lambda w, s, _servers: {"ingest": ingest(w, s)},
    "storm": lambda w, s, _servers: {"login_storm": login_storm(w, s)},
    "history": lambda w, s, _servers: history_and_export(w, s),
    "idle": lambda w, s, _servers: {"idle": idle(w, s)},
    "search": lambda w, s, _servers: {"search": {"chatsecure": search(w, *s.search, say)}},
    "files": lambda w, s, _servers: {"file_transfer": _file_transfer(w, s)},
}


def run_suite(
    scale: Scale,
    out_dir: Path,
    peer: bool,
    only: Sequence[str] = (),
    servers: Sequence[str] = ROOM_SERVERS,
) -> dict[str, Any]:
    """Run the scenarios, write latest.json and latest.md under ``out_dir``; return results.

    ``servers``: which of ``ROOM_SERVERS`` the fan-out and latency scenarios run on."""
    from bench.report import markdown  # noqa: PLC0415 - keeps the worker import light

    peer = peer and "ngircd" in servers
    if peer and not IrcServer.install():
        say("ngircd could not be installed: running without the peer")
        peer = False
    room_servers = [k for k in ROOM_SERVERS if k in servers and (peer or k != "ngircd")]
    results: dict[str, Any] = {
        "scale": scale.name,
        "machine": machine(),
        "peer": peer,
        "room_servers": room_servers,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "figures": {},
    }
    results["errors"] = {}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chatsecure-bench-") as tmp:
        for name, scenario in SCENARIOS.items():
            if only and name not in only:
                continue
            say(f"scenario {name} ({scale.name} scale)")
            t = time.monotonic()
            try:
                results["figures"].update(scenario(Path(tmp), scale, room_servers))
            except Exception as exc:  # one failed scenario must not lose the others
                results["errors"][name] = f"{type(exc).__name__}: {exc}"
                say(f"scenario {name} FAILED: {exc}")
            say(f"scenario {name} done in {time.monotonic() - t:.0f}s")
            results["seconds"] = time.monotonic() - t0
            results["machine"]["loadavg_end"] = os.getloadavg()
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "latest.json").write_text(
                json.dumps(results, indent=1, default=_plain) + "\n"
            )
            (out_dir / "latest.md").write_text(markdown(results))
    return results


def _plain(value: object) -> object:
    return str(value)
