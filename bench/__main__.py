"""``python -m bench [--full | --smoke]``: run the suite and write bench/results/latest.*."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.run import ROOM_SERVERS, SCALES, SCENARIOS, run_suite, say

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="full scale (for docs/performance.md)")
    size.add_argument("--smoke", action="store_true", help="tiny scale: checks the suite works")
    parser.add_argument("--no-peer", action="store_true", help="skip ngircd")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        default=[],
        help="run only this scenario (repeatable)",
    )
    parser.add_argument(
        "--server",
        action="append",
        choices=ROOM_SERVERS,
        default=[],
        help="run the fan-out and latency scenarios on this server (repeatable; default: all)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json/.md")
    args = parser.parse_args()
    scale = SCALES["full" if args.full else "smoke" if args.smoke else "default"]
    results = run_suite(
        scale, args.out, peer=not args.no_peer, only=args.only, servers=args.server or ROOM_SERVERS
    )
    say(f"done in {results['seconds']:.0f}s; results in {args.out}/latest.json and latest.md")
    print((args.out / "latest.md").read_text())


if __name__ == "__main__":
    main()
