"""The servers under test: chatsecure from a scratch config (its JSON port, and its IRC
port when asked), and ngircd as the peer.

All listen on 127.0.0.1 only, on ports found free at start. Process figures (CPU
seconds, resident memory) come from ``/proc/<pid>``, so they count the server alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.swarm import raise_fd_limit
from chatsecure.passwords import hash_password
from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.store import NewMessage, Store

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
PASSWORD = "bench-password-Secret!"
# The ngircd operator the fan-out sender becomes, to be given user mode +F.
OPER_NAME, OPER_PASSWORD = "bench", "bench-oper-Secret!"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _raise_nofile() -> None:
    """Run in the server's child process: 10,000 connections need more than 1,024 fds."""
    raise_fd_limit()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def context_switches(pid: int) -> int:
    """Times process ``pid`` (all its threads) left a CPU, by waiting or being preempted."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            for line in (task / "status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name.endswith("ctxt_switches"):  # voluntary_ and nonvoluntary_
                    total += int(value)
    return total


def rss_kib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB


def _start_listening(
    argv: list[str], log_path: Path, port: int, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a server with its output in ``log_path``; return once it accepts on ``port``."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_raise_nofile,  # noqa: PLW1509 - no threads in the bench parent
        )
    _wait_listening(port, process, log_path, 30)
    return process


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server not listening on {port} after {timeout}s")


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Served:
    """A server process the bench started: its pid, and how to stop it."""

    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        _stop(self.process)
        self.process = None


class ChatServer(_Served):
    """A chatsecure-server process with its own folder, config, database and accounts;
    with ``irc`` its IRC listener is on too, at ``irc_port``."""

    def __init__(
        self,
        directory: Path,
        *,
        bcrypt_rounds: int = 10,
        irc: bool = False,
        extra: Mapping[str, Mapping[str, Any]] | None = None,
        database_url: str | None = None,
    ) -> None:
        """``database_url``: a database to share (PostgreSQL, already migrated), instead
        of an SQLite file of its own; the certificate is still the server's own."""
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.irc_port = free_port() if irc else None
        self.rounds = bcrypt_rounds
        self.db_path = directory / "chat.db"
        config: dict[str, dict[str, Any]] = {
            "server": {"host": HOST, "port": self.port, "thread_stack_kib": 64},
            "tls": {"cert_file": "server.pem", "key_file": "server.key", "ca_file": "ca.pem"},
            "database": {"url": database_url or "sqlite:///chat.db"},
            "auth": {"bcrypt_rounds": bcrypt_rounds, "max_failures_per_address": 100_000},
            "rooms": {"default": [], "users_can_create": True},
            "limits": {
                "messages_per_second": 1_000_000,
                "message_burst": 1_000_000,
                "max_connections": 20_000,
                "max_connections_per_address": 20_000,
                "max_unauthenticated": 20_000,
                "max_unauthenticated_per_address": 20_000,
                "idle_timeout": 86_400,
                "login_timeout": 600,
            },
            "logging": {"level": "WARNING"},
        }
        if self.irc_port is not None:
            config["irc"] = {"enabled": True, "host": HOST, "port": self.irc_port}
        for section, values in (extra or {}).items():
            config.setdefault(section, {}).update(values)
        self.config = directory / "config.toml"
        self.config.write_text(
            "".join(
                f"[{section}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items())
                for section, values in config.items()
            )
        )
        self.log = directory / "server.log"
        self._admin("gencert", "--hostname", "localhost")
        engine = make_engine(database_url or f"sqlite:///{self.db_path}")
        if database_url is None:
            upgrade(engine)
        self.store = Store(engine)
        self._hash: str | None = None

    def _admin(self, *args: str) -> None:
        done = subprocess.run(
            [str(BIN / "chatsecure-admin"), "--config", str(self.config), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise RuntimeError(f"chatsecure-admin {args[0]} failed: {done.stderr.strip()}")

    def add_users(self, names: Sequence[str], rooms: Iterable[str]) -> None:
        """Accounts sharing one hash at the configured cost (hashing each would take minutes)."""
        if self._hash is None:
            self._hash = hash_password(PASSWORD, self.rounds)
        rooms = list(rooms)
        for start in range(0, len(names), 2000):
            self.store.create_accounts(
                [(n, self._hash) for n in names[start : start + 2000]], rooms
            )

    def join(self, names: Sequence[str], room: str) -> None:
        for name in names:
            account = self.store.get_account(name)
            assert account is not None
            self.store.join_room(account.id, room, create=True)

    def fill_messages(
        self, sender: str, rooms: Sequence[str], count: int, text_chars: int, batch: int = 10_000
    ) -> None:
        """``count`` messages round-robin over ``rooms``, through the Store's batch insert."""
        account = self.store.get_account(sender)
        assert account is not None
        room_ids = [self.store.room_id(r) for r in rooms]
        text = "h" * text_chars
        done = 0
        while done < count:
            n = min(batch, count - done)
            picks = [(done + i) % len(rooms) for i in range(n)]
            self.store.insert_messages(
                [
                    NewMessage(
                        account.id, account.name, text, room_id=room_ids[k], room_name=rooms[k]
                    )
                    for k in picks
                ]
            )
            done += n

    def start(self, code: Path | None = None) -> None:
        """Run the server; ``code`` is another checkout's folder to import chatsecure from."""
        argv = [str(BIN / "chatsecure-server"), "--config", str(self.config)]
        env = None if code is None else {**os.environ, "PYTHONPATH": str(code)}
        self.process = _start_listening(argv, self.log, self.port, env)
        if self.irc_port is not None:
            _wait_listening(self.irc_port, self.process, self.log, 30)


class IrcServer(_Served):
    """ngircd on loopback with TLS, as fast as its configuration lets it be.

    ``MaxPenaltyTime = 0`` turns off the per-command penalty (flood protection) that
    would otherwise throttle a sender to about one line a second; ``MaxConnectionsIP = 0``
    lifts the per-address cap; DNS and IDENT lookups are off, as they would be timed.
    That alone leaves an ordinary client a few commands per loop of the server: the
    sender of a run becomes the ``[Operator]`` below and sets user mode ``+F`` (relaxed
    flood protection), as ``Agent.oper`` does. The server password (``[Global]
    Password``) is the accounts' one, so one IRC login (``PASS``, ``NICK``, ``USER``)
    serves both IRC servers.
    """

    def __init__(self, directory: Path, cert: Path, key: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.plain_port = free_port()
        self.config = directory / "ngircd.conf"
        self.config.write_text(
            "[Global]\n"
            "Name = bench.localhost\nInfo = chatsecure bench peer\n"
            f"Listen = {HOST}\nPorts = {self.plain_port}\n"
            f"MotdPhrase = bench\nPidFile = {directory / 'ngircd.pid'}\n"
            f"Password = {PASSWORD}\n"
            "[Limits]\n"
            "MaxConnections = 0\nMaxConnectionsIP = 0\nMaxJoins = 0\nMaxNickLength = 30\n"
            "MaxPenaltyTime = 0\nPingTimeout = 3600\nPongTimeout = 3600\n"
            "[Options]\n"
            "DNS = no\nIdent = no\nPAM = no\n"
            "[SSL]\n"
            f"CertFile = {cert}\nKeyFile = {key}\nPorts = {self.port}\n"
            "[Operator]\n"
            f"Name = {OPER_NAME}\nPassword = {OPER_PASSWORD}\n"
        )
        self.log = directory / "ngircd.log"

    @staticmethod
    def available() -> bool:
        return shutil.which("ngircd") is not None or Path("/usr/sbin/ngircd").exists()

    @staticmethod
    def install() -> bool:
        """Install Debian's ngircd with apt-get when missing (the bench runs as root)."""
        if IrcServer.available():
            return True
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for args in (
            ["apt-get", "install", "-y", "-q", "ngircd"],
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "ngircd"],
        ):
            subprocess.run(args, env=env, capture_output=True, timeout=600, check=False)
            if IrcServer.available():
                return True
        return False

    def start(self) -> None:
        binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
        self.process = _start_listening(
            [binary, "--nodaemon", "--config", str(self.config)], self.log, self.port
        )
