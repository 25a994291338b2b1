"""``python -m bench.tlsfloor`` at tiny scale: it runs and reports a cost per delivery.

Timings are never asserted: they depend on the machine and its load.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.tlsfloor import measure

pytestmark = pytest.mark.timeout(120)


def test_measure_delivers_over_tls_1_3() -> None:
    cpu_us, wall_us, cipher = measure(connections=3, rounds=5)
    assert cpu_us > 0
    assert wall_us > 0
    assert cipher.startswith("TLS_")  # a TLS 1.3 suite, as the scenarios negotiate


def test_bad_argument_is_refused_clearly() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.tlsfloor", "--connections", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--connections must be from 1 to 5000" in done.stderr
