"""What the server harnesses share: a program in a subprocess that dies with the test run.

``spawn`` starts any test subprocess (servers, Xvfb) so that Linux ends it when the test
run dies, even by SIGKILL: without that, a killed pytest leaves its servers listening.
``LoggedProcess`` is a server run with its output appended to a log file: start it and
wait for its banner, read what this run printed, stop it (SIGTERM, then SIGKILL), kill it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1


def password_of(user: str) -> str:
    """Every test account's password: derived from the name, long enough for the policy."""
    return f"pw-{user.lower()}-Secret!"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _death_signal(signum: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send ``signum`` to the child when its parent dies.

    Linux sends it when the *thread* that forked the child ends, not the process: the
    fixtures start their subprocesses from pytest's main thread, which lives as long as
    the run. Elsewhere there is no such call, and children may outlive a killed run.
    """
    if not sys.platform.startswith("linux"):
        return None
    # Looked up here, in the parent: the child between fork and exec should only call it.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def ask() -> None:
        if prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request was made
            os._exit(1)

    return ask


def spawn(
    command: Sequence[str], *, on_parent_death: signal.Signals = signal.SIGTERM, **options: Any
) -> subprocess.Popen[Any]:
    """``subprocess.Popen(command, **options)``, sent ``on_parent_death`` when pytest dies.

    SIGTERM by default: the server shuts down as for an admin, Xvfb removes its lock file.
    """
    # preexec_fn is unsafe when it takes locks another thread may hold at the fork; this
    # one only makes two system calls.
    tie = _death_signal(on_parent_death)
    return subprocess.Popen(command, preexec_fn=tie, **options)  # noqa: PLW1509


class LoggedProcess:
    """A server run by ``command``; ready once its output shows ``ready``.

    Every run appends stdout and stderr to ``log_path``; ``output()`` is the current (or
    last) run's part of it.
    """

    def __init__(
        self,
        command: Sequence[str],
        log_path: Path,
        ready: str,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.log_path = log_path
        self.ready = ready
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the process and wait until its output shows ``ready``."""
        assert not self.running, "already running"
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = spawn(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while self.ready not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.command[0]} exited {self.process.returncode} at start:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {self.ready!r} from {self.command[0]} after {timeout}s:\n{self.output()}"
                )
            time.sleep(0.02)

    def output(self) -> str:
        """What the current (or last) run printed, stdout and stderr together."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", "replace")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait for the exit; returns the exit status. Killed if it hangs."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.command[0]} did not exit within {timeout}s of SIGTERM"
            ) from None

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to end by itself; its exit status."""
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(STOP_TIMEOUT)

    def end(self) -> None:
        """For teardown: stop the process if it runs, killed if it will not stop."""
        if self.running:
            with contextlib.suppress(AssertionError):
                self.stop()
