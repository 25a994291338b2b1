"""Real IRC clients, driven as a person would, for the tests: WeeChat and irssi.

WeeChat runs headless (``weechat-headless``); commands go in through its FIFO and what
it shows is read from the logs it writes per buffer. irssi runs in a ``tmux`` session of
its own tmux server; keys go in with ``send-keys`` and what it shows is read from its
autolog files. Both log with seconds, in UTC, so a test can check the time a replayed
message is shown at. A missing program fails the test naming the Debian package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.serverproc import spawn

WAIT = 15.0  # for a client to show something; a failure waits this long, a pass does not
PACKAGES = {"weechat-headless": "weechat-headless", "irssi": "irssi", "tmux": "tmux"}


def require(program: str) -> str:
    """The path of ``program``, or fail naming the Debian package that provides it."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(
            f"{program} is not installed; the IRC client tests need the Debian package "
            f"{PACKAGES[program]} (apt-get install {' '.join(PACKAGES.values())})",
            pytrace=False,
        )
    return path


def _environment() -> dict[str, str]:
    return {**os.environ, "TZ": "UTC", "LANG": "C.UTF-8", "TERM": "xterm"}


def wait_for_line(path: Path, wanted: Callable[[str], bool], what: str) -> str:
    """The first line of the file at ``path`` that is ``wanted``, waiting up to WAIT."""
    deadline = time.monotonic() + WAIT
    while True:
        lines = path.read_text("utf-8", "replace").splitlines() if path.exists() else []
        found = [line for line in lines if wanted(line)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            shown = "\n".join(lines[-30:]) or "(nothing)"
            raise AssertionError(f"{what} never showed in {path.name}:\n{shown}")
        time.sleep(0.05)


class Weechat:
    """WeeChat headless, logged in by SASL PLAIN on server ``cs``."""

    def __init__(self, home: Path, port: int, ca_file: Path, user: str, password: str) -> None:
        self.home = home
        self.logs = home / "logs"
        home.mkdir(parents=True)
        setup = [
            "/set logger.file.flush_delay 0",
            "/set logger.file.time_format %Y-%m-%d %H:%M:%S",
            f"/set weechat.network.gnutls_ca_user {ca_file}",
            f"/server add cs 127.0.0.1/{port}",
            # WeeChat 3.x calls TLS "ssl", 4.x "tls": one of the two is an unknown option.
            "/set irc.server.cs.ssl on",
            "/set irc.server.cs.tls on",
            "/set irc.server.cs.sasl_mechanism plain",
            f"/set irc.server.cs.sasl_username {user}",
            f"/set irc.server.cs.sasl_password {password}",
            f"/set irc.server.cs.nicks {user}",
            "/set irc.server.cs.autoreconnect off",
            # No pause between our lines (3.x in seconds, 4.x in milliseconds).
            "/set irc.server.cs.anti_flood_prio_high 0",
            "/set irc.server.cs.anti_flood_prio_low 0",
            "/set irc.server.cs.anti_flood 0",
            "/connect cs",
        ]
        self.process = spawn(
            [require("weechat-headless"), "--dir", str(home), "--no-script"]
            + [arg for command in setup for arg in ("-r", command)],
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_registered(self) -> None:
        self.shows("server", "End of /MOTD command")

    def log(self, buffer: str) -> Path:
        """The log of buffer ``buffer``: ``server`` for the server's, a channel or a nick."""
        name = "irc.server.cs" if buffer == "server" else f"irc.cs.{buffer}"
        return self.logs / f"{name}.weechatlog"

    def shows(self, buffer: str, *parts: str) -> str:
        """The log line of ``buffer`` (date, time, prefix, text) containing all ``parts``."""
        return wait_for_line(
            self.log(buffer), lambda line: all(p in line for p in parts), f"{parts}"
        )

    def do(self, buffer: str, text: str) -> None:
        """Type ``text`` (a command or a message) in ``buffer`` (``server`` or a channel)."""
        name = "irc.server.cs" if buffer == "server" else f"irc.cs.{buffer}"
        deadline = time.monotonic() + WAIT
        while not (fifos := list(self.home.glob("weechat_fifo*"))):
            assert time.monotonic() < deadline, "WeeChat made no FIFO"
            time.sleep(0.05)
        with fifos[0].open("w", encoding="utf-8") as fifo:
            fifo.write(f"{name} *{text}\n")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class Irssi:
    """irssi in a tmux session of its own tmux server, logged in with ``PASS``."""

    def __init__(self, home: Path, port: int, ca_file: Path, user: str, password: str) -> None:
        self.home = home
        self.logs = home / "logs"
        self.socket = f"chatsecure-test-{os.getpid()}-{user}"
        home.mkdir(parents=True)
        (home / "startup").write_text(
            "\n".join(
                [
                    "/set autolog on",
                    f"/set autolog_path {self.logs}/$$0.log",
                    "/set log_timestamp %H:%M:%S ",
                    "/set cmd_queue_speed 0",  # no pause between our lines
                    "/set show_server_time on",  # off by default: replayed history would
                    # show the time it arrived, not the time it was sent
                    # localhost: irssi matches the certificate's names, not its addresses.
                    f"/connect -tls -tls_cafile {ca_file} -tls_verify localhost {port} "
                    f"{user}:{password} {user}",
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        self._tmux(
            "new-session", "-d", "-s", "irc", "-x", "200", "-y", "50",
            f"{require('irssi')} --home={home}",
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            [require("tmux"), "-L", self.socket, *args],
            check=True,
            env=_environment(),
            timeout=10,
            capture_output=True,
            text=True,
        ).stdout

    def wait_registered(self) -> None:
        deadline = time.monotonic() + WAIT
        while "End of /MOTD command" not in (screen := self._screen()):
            if time.monotonic() > deadline:
                raise AssertionError(f"irssi did not register:\n{screen}")
            time.sleep(0.05)

    def _screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "irc")

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "irc", "-l", text)
        self._tmux("send-keys", "-t", "irc", "Enter")

    def shows(self, window: str, *parts: str) -> str:
        """The autolog line of ``window`` (a channel or a nick) containing all ``parts``."""
        return wait_for_line(
            self.logs / f"{window}.log", lambda line: all(p in line for p in parts), f"{parts}"
        )

    def close(self) -> None:
        subprocess.run(
            [require("tmux"), "-L", self.socket, "kill-server"],
            env=_environment(),
            timeout=10,
            capture_output=True,
            check=False,
        )
