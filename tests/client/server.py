"""A real chatsecure server in a subprocess, for the client and GUI tests.

Each server gets a scratch folder with its own config, SQLite database (migrated in
code) and accounts made with the store; certificates come from a throwaway CA made
by ``chatsecure.tls_certs``. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chatsecure.passwords import hash_password
from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.store import Store
from chatsecure.tls_certs import CertificatePaths, make_dev_certificates, write_dev_certificates

HOST = "127.0.0.1"
START_TIMEOUT = 20.0


def password_of(user: str) -> str:
    return f"pw-{user.lower()}-Secret!"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def make_certs(folder: Path, label: str = "server") -> Certs:
    """A fresh CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    certs = Certs(folder / f"{label}-ca.pem", folder / f"{label}.pem", folder / f"{label}.key")
    paths = CertificatePaths.beside_ca(certs.cert, certs.key, certs.ca)
    write_dev_certificates(make_dev_certificates(days=2), paths, overwrite=False)
    return certs


class ServerProcess:
    """One server: start, stop, kill, restart (optionally with other certificates)."""

    def __init__(self, directory: Path, certs: Certs, **auth: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.certs = certs
        self.port = free_port()
        self.auth = {"bcrypt_rounds": 10, "max_failures": 3, **auth}
        self.db_url = f"sqlite:///{directory / 'chat.db'}"
        self.log_path = directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.write_config()
        self.store = Store(make_engine(self.db_url))
        upgrade(self.store.engine)

    def write_config(self) -> None:
        auth = "\n".join(f"{k} = {v}" for k, v in self.auth.items())
        (self.directory / "config.toml").write_text(
            f'[server]\nhost = "{HOST}"\nport = {self.port}\n\n'
            f'[tls]\ncert_file = "{self.certs.cert}"\nkey_file = "{self.certs.key}"\n'
            f'ca_file = "{self.certs.ca}"\n\n'
            f'[database]\nurl = "{self.db_url}"\n\n[auth]\n{auth}\n'
            'max_failures_per_address = 100000\n\n[rooms]\ndefault = ["general"]\n\n'
            "[limits]\nmessages_per_second = 1000\nmessage_burst = 1000\n",
            encoding="utf-8",
        )

    def add_user(self, name: str, rooms: tuple[str, ...] = ("general",)) -> str:
        self.store.create_account(name, hash_password(password_of(name), 10), rooms)
        return password_of(name)

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chatsecure.server.app", "--config", "config.toml"],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while f"listening on {HOST}:{self.port}" not in self._output(offset):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{self._output(offset)}")
            time.sleep(0.02)

    def _output(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self, certs: Certs | None = None) -> None:
        self.stop()
        if certs is not None:
            self.certs = certs
            self.write_config()
        self.start()

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self.store.engine.dispose()
