"""The benchmark suite at tiny scale: it runs and writes well-formed results.

Timings are never asserted: they depend on the machine and its load.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import ROWS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_smoke_run_writes_results(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--no-peer", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
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
    table = (tmp_path / "latest.md").read_text()
    assert table.count("\n|") >= len(ROWS)
