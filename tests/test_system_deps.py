"""``.ci/system-deps``: what ``make test`` does on a machine that lacks a program.

The script runs with a PATH of stubs only (it uses nothing but bash, ``id`` and
apt-get), so the tests see what it would install, as whom, without touching the system.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "system-deps"
BASH = shutil.which("bash") or "/bin/bash"


def _needs(goal: str) -> list[tuple[str, str]]:
    """(program, package) of ``goal``, read from the script's one list."""
    block = SCRIPT.read_text(encoding="utf-8").split("DEPENDENCIES='", 1)[1].split("'", 1)[0]
    rows = [line.split() for line in block.splitlines() if line.strip()]
    return [(program, package) for g, program, package in rows if g == goal]


TEST_PACKAGES = " ".join(package for _program, package in _needs("test"))


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{BASH}\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder


def _run(stubs: Path, *goals: str, uid: int = 0) -> subprocess.CompletedProcess[str]:
    _stub(stubs, "id", f"echo {uid}")
    return subprocess.run(
        [BASH, str(SCRIPT), *goals],
        env={"PATH": str(stubs)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _apt_get(stubs: Path, exit_code: int = 0) -> Path:
    """An apt-get that logs each call's arguments as a line."""
    calls = stubs.parent / "apt-calls"
    _stub(stubs, "apt-get", f'echo "$*" >> {calls}\necho "apt says hello" >&2\nexit {exit_code}')
    return calls


def test_root_with_apt_updates_once_and_installs_what_is_missing(stubs):
    calls = _apt_get(stubs)
    done = _run(stubs, "test")
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == ["update -qq", f"install -y -qq {TEST_PACKAGES}"]
    assert f"installing system packages for test: {TEST_PACKAGES}" in done.stdout
    assert "apt says hello" not in done.stdout + done.stderr


def test_nothing_is_installed_when_everything_is_there(stubs):
    calls = _apt_get(stubs)
    for program, _package in _needs("test"):
        _stub(stubs, program, "exit 0")
    done = _run(stubs, "test")
    assert done.returncode == 0, done.stderr
    assert not calls.exists()
    assert done.stdout == done.stderr == ""


def test_without_root_it_stops_with_the_one_command(stubs):
    calls = _apt_get(stubs)
    done = _run(stubs, "test", uid=1000)
    assert done.returncode == 1
    assert (
        done.stderr.splitlines()[-1]
        == f"install them with: sudo apt-get install -y {TEST_PACKAGES}"
    )
    assert not calls.exists()


def test_without_apt_get_it_stops_with_the_one_command(stubs):
    done = _run(stubs, "test")
    assert done.returncode == 1
    assert f"sudo apt-get install -y {TEST_PACKAGES}" in done.stderr


def test_a_failed_install_shows_apt_and_fails(stubs):
    _apt_get(stubs, exit_code=100)
    done = _run(stubs, "test")
    assert done.returncode == 1
    assert "apt says hello" in done.stderr
    assert "could not install: xvfb" in done.stderr


@pytest.mark.parametrize("goals", [(), ("tset",)])
def test_an_unknown_goal_is_a_usage_error(stubs, goals):
    done = _run(stubs, *goals)
    assert done.returncode == 2
    assert "goals: test bench" in done.stderr
