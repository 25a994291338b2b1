"""``python -m bench.ab BEFORE AFTER``: the ingest scenario on two checkouts, side by side.

On a shared two-core machine one ingest figure moves by ±10% from minute to minute, more
than most changes do. So both servers run at once, each with its own senders, and runs
alternate (A B, B A, ...): each pair sees the same machine, and the median of the
per-pair ratios says what the change did. BEFORE and AFTER are checkout folders (for
example from ``git worktree add``) whose ``chatsecure`` package the servers import; ``-``
is this checkout.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.run import IngestRig, say


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("before", help="checkout folder, or - for this one")
    parser.add_argument("after", help="checkout folder, or - for this one")
    parser.add_argument("--runs", type=int, default=8, help="runs of each (default 8)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of a run")
    args = parser.parse_args()
    if not 1 <= args.runs <= 50 or not 0.5 <= args.seconds <= 30:
        parser.error("--runs must be 1-50 and --seconds 0.5-30")
    codes = [None if c == "-" else Path(c).resolve() for c in (args.before, args.after)]
    for code in codes:
        if code is not None and not (code / "chatsecure" / "__init__.py").is_file():
            parser.error(f"{code} holds no chatsecure package")
    with tempfile.TemporaryDirectory(prefix="chatsecure-ab-") as work:
        rigs: list[IngestRig] = []
        try:
            for name, code in zip("ab", codes, strict=True):
                rigs.append(IngestRig(Path(work) / name, code))
            rates: list[list[float]] = [[], []]
            cpu: list[list[float]] = [[], []]
            for run in range(args.runs):
                for side in (0, 1) if run % 2 == 0 else (1, 0):
                    figures = rigs[side].run(args.seconds, chars=100)
                    rates[side].append(figures["acked_per_s"])
                    cpu[side].append(figures["server_cpu_us_per_message"])
                say(f"  pair {run + 1}: {rates[0][-1]:,.0f} -> {rates[1][-1]:,.0f} acked msgs/s")
        finally:
            for rig in rigs:
                rig.close()
    for side, name in enumerate((args.before, args.after)):
        say(
            f"{name}: median {statistics.median(rates[side]):,.0f} acked msgs/s, "
            f"{statistics.median(cpu[side]):.1f} us of server CPU per message"
        )
    ratios = [b / a for a, b in zip(rates[0], rates[1], strict=True)]
    say(
        f"after/before per pair: median {statistics.median(ratios):.3f} "
        f"(from {min(ratios):.2f} to {max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
