"""The markdown table of a run: one row per figure, with the ratio to ngircd and the target.

chatsecure's JSON port and its IRC port each get a column and a ratio to ngircd; the
targets are the JSON port's (issue 18), the IRC port is the like-for-like comparison.
"""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str, bool]


def _latency_rows(rate: int) -> list[Row]:
    scenario, name = f"latency_{rate}", f"latency {rate} msg/s"
    return [
        (scenario, "last_p50_ms", f"{name} into big room: p50 to last", "ms", False),
        (scenario, "last_p99_ms", f"{name} into big room: p99 to last", "ms", False),
        (scenario, "first_p99_ms", f"{name} into big room: p99 to first", "ms", False),
        (scenario, "delivered_pct", f"{name}: delivered", "%", True),
        (scenario, "server_cpu_us_per_delivery", f"{name}: server CPU/delivery", "us", False),
        (scenario, "generator_cpu_us_per_delivery", f"{name}: generator CPU/delivery", "us", False),
        (scenario, "cpu_bound_ms", f"{name}: both sides' CPU per message / cores", "ms", False),
        (
            scenario,
            "receiver_switches_per_delivery",
            f"{name}: receivers' context switches",
            "per delivery",
            False,
        ),
    ]


# (scenario, figure, label, unit, higher is better); fan-out rows come first, per size run.
ROWS: list[Row] = [
    *_latency_rows(20),
    *_latency_rows(100),
    ("ingest", "acked_per_s", "ingest, 50 senders", "acked msgs/s", True),
    ("login_storm", "logins_per_s", "login storm (cost 12)", "logins/s", True),
    ("login_storm", "of_bound_pct", "login storm: share of bcrypt bound", "%", True),
    (
        "login_storm",
        "machine_bcrypt_per_s",
        "login storm: bcrypt checks/s the machine gave",
        "checks/s",
        True,
    ),
    ("login_storm", "server_cpu_pct", "login storm: server CPU", "%", True),
    ("login_storm", "chatters_p99_ms", "login storm: chatters' p99", "ms", False),
    ("history", "server_ms_minus_bcrypt", "history on login, 20 rooms (minus bcrypt)", "ms", False),
    ("export", "ratio", "export JSONL vs bare sqlite3 loop", "x", False),
    ("search", "newest_p50_ms", "search: newest 20 of a common word, median", "ms", False),
    ("search", "newest_p99_ms", "search: newest 20 of a common word, p99", "ms", False),
    ("search", "paged_p99_ms", "search: a page back (before), p99", "ms", False),
    ("search", "room_p99_ms", "search: in one room of 40, p99", "ms", False),
    ("search", "phrase_p99_ms", "search: a word and a phrase, p99", "ms", False),
    ("search", "index_mib_per_million", "search index size per million messages", "MiB", False),
    ("search", "write_cost_x", "search: batch insert time with the index", "x", False),
    ("search", "compact_s_per_million", "search: compacting the index", "s/M msgs", False),
    ("idle", "kib_per_connection", "idle: server memory per connection", "KiB", False),
    ("idle", "idle_cpu_pct", "idle: server CPU", "%", False),
    ("file_transfer", "chat_p99_during_ms", "chat p99 while 5 clients upload", "ms", False),
    ("file_transfer", "chat_p99_before_ms", "chat p99 before the uploads", "ms", False),
    ("file_transfer", "upload_mib_per_s", "uploads, 5 clients together", "MiB/s", True),
]

TARGETS: dict[tuple[str, str], tuple[str, Any]] = {
    ("fanout_1000", "deliveries_per_s"): (">= 1.5x ngircd", lambda v, p: p and v >= 1.5 * p),
    ("latency_20", "last_p99_ms"): ("<= 0.8x ngircd", lambda v, p: p and v <= 0.8 * p),
    ("latency_100", "last_p99_ms"): ("<= 0.7x ngircd", lambda v, p: p and v <= 0.7 * p),
    ("latency_100", "delivered_pct"): ("100%", lambda v, p: v >= 100.0),
    ("ingest", "acked_per_s"): (">= 30,000", lambda v, p: v >= 30_000),
    ("login_storm", "of_bound_pct"): (">= 80%", lambda v, p: v >= 80),
    ("login_storm", "chatters_p99_ms"): ("< 100 ms", lambda v, p: v < 100),
    ("history", "server_ms_minus_bcrypt"): ("< 20 ms", lambda v, p: v < 20),
    ("export", "ratio"): ("<= 1.5x", lambda v, p: v <= 1.5),
    ("search", "newest_p99_ms"): ("< 20 ms", lambda v, p: v < 20),
    ("idle", "kib_per_connection"): ("<= 100 KiB", lambda v, p: v <= 100),
}


def _fmt(value: float | None) -> str:
    if value is None or value != value:  # noqa: PLR0124 - NaN check
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(ours: float | None, peer: float | None, higher: bool) -> str:
    if ours is None or not peer:
        return "-"
    if higher:
        return f"{ours / peer:.2f}x"
    return f"{peer / ours:.2f}x" if ours else "-"


def markdown(results: dict[str, Any]) -> str:
    """The run as a markdown table (figures are medians of the runs)."""
    m = results["machine"]
    lines = [
        f"Scale: **{results['scale']}**, started {results['started']}; {m['nproc']} cores "
        f"({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}; load average at "
        f"start {m['loadavg_start'][0]:.2f}, at end {m['loadavg_end'][0]:.2f}.",
        "",
        "| figure | chatsecure | chatsecure IRC | ngircd | ratio | IRC ratio | target | met |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    figures = results["figures"]
    fanout = sorted((k for k in figures if k.startswith("fanout_")), key=lambda k: int(k[7:]))
    rows = [
        (k, "deliveries_per_s", f"fan-out, {int(k[7:]):,} clients", "deliveries/s", True)
        for k in fanout
    ]
    rows += [
        (k, "server_cpu_pct", f"fan-out, {int(k[7:]):,} clients: server CPU", "%", False)
        for k in fanout
    ]
    for scenario, key, label, unit, higher in rows + ROWS:
        if scenario not in figures:
            continue
        ours = figures[scenario].get("chatsecure", {}).get(key)
        irc = figures[scenario].get("chatsecure-irc", {}).get(key)
        peer = figures[scenario].get("ngircd", {}).get(key)
        target, test = TARGETS.get((scenario, key), ("", None))
        met = "" if test is None or ours is None else ("yes" if test(ours, peer) else "no")
        lines.append(
            f"| {label} ({unit}) | {_fmt(ours)} | {_fmt(irc)} | {_fmt(peer)} "
            f"| {_ratio(ours, peer, higher)} | {_ratio(irc, peer, higher)} | {target} | {met} |"
        )
    lines += [
        "",
        "Ratios are chatsecure's advantage over ngircd (>1 is better for chatsecure), for "
        "its JSON port and for its IRC port; ngircd's sender is an operator with +F.",
        "",
    ]
    for name, error in results.get("errors", {}).items():
        lines += [f"Scenario `{name}` failed: `{error.splitlines()[0]}`", ""]
    return "\n".join(lines)
