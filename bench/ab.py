"""``python -m bench.ab BEFORE AFTER``: one scenario on two checkouts, side by side.

On a shared two-core machine one figure moves by ±10% from minute to minute, more than
most changes do. So both servers run at once, each with its own clients, and runs
alternate (A B, B A, ...): each pair sees the same machine, and the median of the
per-pair ratios says what the change did. BEFORE and AFTER are checkout folders (for
example from ``git worktree add``) whose ``chatsecure`` package the servers import; ``-``
is this checkout. ``--scenario ingest`` (the default) is 50 senders each in a room of its
own; ``--scenario fanout`` is one sender into a room of 1,000 receivers;
``--scenario latency`` sends into that room at ``--rate`` messages/s and compares the p99
time to the last receiver (lower is better; at least 400 messages a run make it a p99).
``--port irc`` runs those two over the IRC listener instead of the JSON port.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import statistics
import tempfile
from pathlib import Path
from typing import Any, Protocol

from bench.run import SCALES, IngestRig, fanout_once, latency_once, room_setup, say


class Rig(Protocol):
    def run(self, seconds: float, chars: int) -> dict[str, float]: ...

    def close(self) -> None: ...


class FanoutRig:
    """A server with 1,000 receivers in one room, and the fan-out scenario's sender."""

    RECEIVERS = 1000

    def __init__(self, work: Path, code: Path | None = None, *, port: str = "json") -> None:
        kind = "chatsecure-irc" if port == "irc" else "chatsecure"
        self.server, self.fleet, self.users = room_setup(kind, work, (self.RECEIVERS,), code)

    def run(self, seconds: float, chars: int) -> dict[str, float]:
        scale = dataclasses.replace(SCALES["default"], fanout_seconds=seconds, chars=chars)
        figures = fanout_once(self.fleet, self.server, self.users, self.RECEIVERS, scale)
        return {
            "rate": figures["deliveries_per_s"],
            "cpu_us": 1e6 * figures["server_cpu_pct"] / 100 / max(figures["deliveries_per_s"], 1),
        }

    def close(self) -> None:
        self.fleet.close()
        self.server.stop()


class LatencyRig(FanoutRig):
    """The fan-out room, sent into at a fixed rate: the p99 time to the last receiver."""

    def __init__(
        self, work: Path, code: Path | None = None, *, port: str = "json", rate: int = 20
    ) -> None:
        super().__init__(work, code, port=port)
        self.rate = rate

    def run(self, seconds: float, chars: int) -> dict[str, float]:
        scale = dataclasses.replace(SCALES["default"], latency_seconds=seconds, chars=chars)
        figures = latency_once(
            self.fleet, self.server, n=self.RECEIVERS, rate=self.rate, scale=scale
        )
        if figures["delivered_pct"] < 100:
            raise RuntimeError(f"only {figures['delivered_pct']:.2f}% delivered")
        return {"rate": figures["last_p99_ms"], "cpu_us": figures["server_cpu_us_per_delivery"]}


class IngestAb:
    def __init__(self, work: Path, code: Path | None = None) -> None:
        self.rig = IngestRig(work, code)

    def run(self, seconds: float, chars: int) -> dict[str, float]:
        figures = self.rig.run(seconds, chars=chars)
        return {"rate": figures["acked_per_s"], "cpu_us": figures["server_cpu_us_per_message"]}

    def close(self) -> None:
        self.rig.close()


SCENARIOS: dict[str, tuple[Any, str]] = {
    "ingest": (IngestAb, "acked msgs/s"),
    "fanout": (FanoutRig, "deliveries/s"),
    "latency": (LatencyRig, "ms p99 to the last receiver"),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("before", help="checkout folder, or - for this one")
    parser.add_argument("after", help="checkout folder, or - for this one")
    parser.add_argument("--runs", type=int, default=8, help="runs of each (default 8)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of a run")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="ingest")
    parser.add_argument("--rate", type=int, default=20, help="latency: messages/s (default 20)")
    parser.add_argument(
        "--port",
        choices=("json", "irc"),
        default="json",
        help="fanout, latency: the port the clients use (default json)",
    )
    args = parser.parse_args()
    if not 1 <= args.runs <= 50 or not 0.5 <= args.seconds <= 30:
        parser.error("--runs must be 1-50 and --seconds 0.5-30")
    if not 1 <= args.rate <= 1000:
        parser.error("--rate must be 1-1000")
    if args.port != "json" and args.scenario == "ingest":
        parser.error("--port irc is for the fanout and latency scenarios")
    codes = [None if c == "-" else Path(c).resolve() for c in (args.before, args.after)]
    for code in codes:
        if code is not None and not (code / "chatsecure" / "__init__.py").is_file():
            parser.error(f"{code} holds no chatsecure package")
    with tempfile.TemporaryDirectory(prefix="chatsecure-ab-") as work:
        make_rig, unit = SCENARIOS[args.scenario]
        if make_rig is LatencyRig:
            make_rig = functools.partial(LatencyRig, port=args.port, rate=args.rate)
        elif make_rig is FanoutRig:
            make_rig = functools.partial(FanoutRig, port=args.port)
        rigs: list[Rig] = []
        try:
            for name, code in zip("ab", codes, strict=True):
                rigs.append(make_rig(Path(work) / name, code))
            rates: list[list[float]] = [[], []]
            cpu: list[list[float]] = [[], []]
            for run in range(args.runs):
                for side in (0, 1) if run % 2 == 0 else (1, 0):
                    figures = rigs[side].run(args.seconds, chars=100)
                    rates[side].append(figures["rate"])
                    cpu[side].append(figures["cpu_us"])
                say(f"  pair {run + 1}: {rates[0][-1]:,.1f} -> {rates[1][-1]:,.1f} {unit}")
        finally:
            for rig in rigs:
                rig.close()
    for side, name in enumerate((args.before, args.after)):
        say(
            f"{name}: median {statistics.median(rates[side]):,.1f} {unit}, "
            f"{statistics.median(cpu[side]):.2f} us of server CPU per "
            f"{'message' if args.scenario == 'ingest' else 'delivery'}"
        )
    ratios = [b / a for a, b in zip(rates[0], rates[1], strict=True)]
    say(
        f"after/before per pair: median {statistics.median(ratios):.3f} "
        f"(from {min(ratios):.2f} to {max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
