"""A real redis-server for the cluster tests, started and stopped by the test run itself.

It listens on a free port on 127.0.0.1 only, keeps nothing on disk (no snapshots, no
append-only file) and dies with the run (``spawn``). ``restart`` stops it and starts it
again on the same port, as an admin restarting Redis would: subscribers lose their
connection and what was published meanwhile.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.serverproc import HOST, free_port, spawn

INSTALL_HINT = "the cluster tests need redis-server (as root: apt-get install redis-server)"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class RedisUnavailableError(Exception):
    """redis-server could not be started; the message says what to install or look at."""


class RedisServer:
    def __init__(self) -> None:
        program = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
        if program is None:
            raise RedisUnavailableError(f"no redis-server on PATH: {INSTALL_HINT}")
        self.program = program
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="chatsecure-redis-"))
        self.log_path = self.folder / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        command = [
            self.program,
            "--bind",
            HOST,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--protected-mode",
            "yes",
        ]
        with self.log_path.open("ab") as log:
            self.process = spawn(
                command,
                on_parent_death=signal.SIGKILL,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None:
                raise RedisUnavailableError(
                    f"redis-server exited {self.process.returncode} at start:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise RedisUnavailableError(f"redis-server did not answer:\n{self.log()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)
