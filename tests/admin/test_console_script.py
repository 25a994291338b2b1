"""The installed ``chatsecure-admin`` script, run as an admin would run it."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "chatsecure-admin"


def _run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *argv], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_console_script_end_to_end(config_path):
    config = str(config_path)
    assert _run("--config", config, "migrate").returncode == 0
    added = _run(
        "--config", config, "adduser", "alice", "--password-stdin", stdin="long enough pw\n"
    )
    assert added.returncode == 0, added.stderr
    duplicate = _run("--config", config, "adduser", "Alice", "--password-stdin", stdin="x" * 20)
    assert duplicate.returncode == 1
    assert duplicate.stderr == "chatsecure-admin: error: an account named 'alice' already exists\n"
    listed = _run("--config", config, "users")
    assert listed.returncode == 0
    assert "alice" in listed.stdout
