"""init: from an empty folder to a running server with the commands it prints."""

from __future__ import annotations

import io
import itertools
import os
import re
import shlex
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chatsecure.admin.cli import main
from chatsecure.config import load_settings, parse_settings
from chatsecure.package import shipped
from tests.admin.conftest import Admin, Result
from tests.e2e.client import ChatClient
from tests.serverproc import HOST, LoggedProcess, free_port

BIN = Path(sys.executable).parent
REPOSITORY = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def _init(*argv: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = main(["init", *argv], stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())


def test_init_writes_the_commented_defaults_and_keeps_an_existing_file(tmp_path):
    folder = tmp_path / "new" / "place"
    result = _init(str(folder))
    assert result.code == 0, result.err
    config = folder / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    text = config.read_text(encoding="utf-8")
    assert text == shipped("config.toml").read_text(encoding="utf-8")
    lines = text.splitlines()
    for before, line in itertools.pairwise(lines):
        if re.match(r"\w+ = ", line):  # every key explained, on its line or the one above
            assert "#" in line or before.startswith("#"), line
    assert load_settings(config) == parse_settings({}, config.resolve())  # only defaults

    config.write_text(text + "# mine\n", encoding="utf-8")
    refused = _init(str(folder))
    assert refused.code == 1
    assert "already exists; add --force" in refused.err
    assert config.read_text(encoding="utf-8").endswith("# mine\n")
    assert _init(str(folder), "--force").code == 0
    assert config.read_text(encoding="utf-8") == text


def test_init_here_needs_no_config_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _init()
    assert result.code == 0, result.err
    assert (tmp_path / "config.toml").is_file()
    assert "--config" not in result.out


def _steps(output: str) -> list[list[str]]:
    """The commands init printed, as argument lists."""
    return [shlex.split(line) for line in output.splitlines() if line.startswith("  ")]


def test_the_printed_commands_get_a_server_running(tmp_path):
    folder = tmp_path / "chat"
    result = _init(str(folder))
    assert result.code == 0, result.err
    config = folder / "config.toml"
    port = free_port()
    config.write_text(config.read_text().replace("port = 5443", f"port = {port}"))
    steps = _steps(result.out)
    assert [step[:3] for step in steps] == [["chatsecure-admin", "--config", str(config)]] * 4 + [
        ["chatsecure-server", "--config", str(config)]
    ]
    *admin_steps, server_step = steps
    for step in admin_steps:
        argv = step[3:]
        if argv == ["check"]:
            continue  # check has tests of its own
        if argv == ["adduser", "NAME"]:
            argv = ["adduser", "alice", "--password-stdin"]
        done = Admin(config)(*argv, stdin=PASSWORD + "\n")
        assert done.code == 0, (argv, done.err)
    server = LoggedProcess(
        [str(BIN / server_step[0]), *server_step[1:]],
        tmp_path / "server.log",
        f"listening on {HOST}:{port}",
    )
    server.start()
    try:
        client = ChatClient(HOST, port, folder / "certs" / "ca.pem")
        assert client.login("alice", PASSWORD)["user"] == "alice"
        client.close()
    finally:
        server.end()


@pytest.mark.slow
def test_the_wheel_ships_the_template_and_the_migrations(tmp_path):
    """What a `pip install` gets: the files are inside the package, not beside a checkout."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("chatsecure-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "installed")
    folder = tmp_path / "empty"
    code = (
        "import sys\n"
        "from chatsecure.admin.cli import main\n"
        "from chatsecure.package import shipped\n"
        "print(shipped('config.toml'), shipped('migrations'))\n"
        f"sys.exit(main(['init', {str(folder)!r}]))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "installed")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    template, migrations = map(Path, ran.stdout.splitlines()[0].split())
    assert template.is_relative_to(tmp_path / "installed" / "chatsecure")
    assert (migrations / "env.py").is_file()
    assert migrations.is_relative_to(tmp_path / "installed" / "chatsecure")
    assert (folder / "config.toml").read_bytes() == (REPOSITORY / "config.toml").read_bytes()
