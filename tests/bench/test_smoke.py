"""The benchmark suite at tiny scale: it runs and writes well-formed results.

Timings are never asserted: they depend on the machine and its load.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.report import ROWS
from bench.servers import IrcServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _bench(out: Path, *args: str) -> dict[str, Any]:
    """``python -m bench --smoke ARGS``; its results."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results: dict[str, Any] = json.loads((out / "latest.json").read_text())
    return results


def test_smoke_run_writes_results(tmp_path: Path) -> None:
    results = _bench(tmp_path, "--no-peer")
    assert results["scale"] == "smoke"
    assert results["errors"] == {}
    assert results["machine"]["nproc"] >= 1
    figures = results["figures"]
    for scenario, key, _label, _unit, _higher in ROWS:
        value = figures[scenario]["chatsecure"][key]
        assert isinstance(value, float)
        assert math.isfinite(value)
    assert figures["latency_20"]["chatsecure"]["delivered_pct"] == 100.0
    assert figures["export"]["chatsecure"]["identical_output"] == 1.0
    for name in ("fanout_5", "fanout_10"):
        assert figures[name]["chatsecure"]["complete"] == 1.0
    # The same rooms scenarios over chatsecure's IRC port, by the IRC generator.
    assert results["room_servers"] == ["chatsecure", "chatsecure-irc"]
    for name in ("fanout_5", "fanout_10"):
        assert figures[name]["chatsecure-irc"]["complete"] == 1.0
    for rate in (20, 100):
        assert figures[f"latency_{rate}"]["chatsecure-irc"]["delivered_pct"] == 100.0
    table = (tmp_path / "latest.md").read_text()
    assert table.count("\n|") >= len(ROWS)


@pytest.mark.skipif(not IrcServer.available(), reason="ngircd is not installed")
def test_the_peer_runs_with_its_sender_opered_and_plus_f(tmp_path: Path) -> None:
    """The run fails unless ngircd grants OPER and +F (bench/worker.py ``oper``)."""
    results = _bench(tmp_path, "--only", "rooms", "--server", "ngircd")
    assert results["errors"] == {}
    assert results["room_servers"] == ["ngircd"]
    assert results["figures"]["fanout_10"]["ngircd"]["complete"] == 1.0


def test_the_search_scenario_alone(tmp_path: Path) -> None:
    results = _bench(tmp_path, "--no-peer", "--only", "search")
    assert results["errors"] == {}
    figures = results["figures"]["search"]["chatsecure"]
    for scenario, key, _label, _unit, _higher in ROWS:
        if scenario == "search":
            assert math.isfinite(figures[key])
    assert figures["messages"] == 2_000.0
    assert 0 < figures["index_share_pct"] < 100
