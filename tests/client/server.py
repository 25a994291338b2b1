"""A real chatsecure server in a subprocess, for the client and GUI tests.

Each server gets a scratch folder with its own config, SQLite database (migrated in
code) and accounts made with the store; certificates come from a throwaway CA made
by ``chatsecure.tls_certs``. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from chatsecure.passwords import hash_password
from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.store import Store
from chatsecure.tls_certs import CertificatePaths, make_dev_certificates, write_dev_certificates
from tests.conftest import write_config
from tests.serverproc import HOST, LoggedProcess, free_port, password_of


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


class ServerProcess(LoggedProcess):
    """One server: start, stop, kill, restart (optionally with other certificates)."""

    def __init__(self, directory: Path, certs: Certs, **auth: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.certs = certs
        self.port = free_port()
        self.auth = {"bcrypt_rounds": 10, "max_failures": 3, **auth}
        self.db_url = f"sqlite:///{directory / 'chat.db'}"
        super().__init__(
            [sys.executable, "-m", "chatsecure.server.app", "--config", "config.toml"],
            directory / "server.log",
            f"listening on {HOST}:{self.port}",
            cwd=directory,
        )
        self._write_config()
        self.store = Store(make_engine(self.db_url))
        upgrade(self.store.engine)

    def _write_config(self) -> None:
        write_config(
            self.directory,
            server={"host": HOST, "port": self.port},
            tls={
                "cert_file": self.certs.cert,
                "key_file": self.certs.key,
                "ca_file": self.certs.ca,
            },
            database={"url": self.db_url},
            auth={**self.auth, "max_failures_per_address": 100_000},
            rooms={"default": ["general"]},
            limits={"messages_per_second": 1000, "message_burst": 1000},
        )

    def add_user(self, name: str, rooms: tuple[str, ...] = ("general",)) -> str:
        self.store.create_account(name, hash_password(password_of(name), 10), rooms)
        return password_of(name)

    def restart(self, certs: Certs | None = None) -> None:
        if self.running:
            self.stop()
        if certs is not None:
            self.certs = certs
            self._write_config()
        self.start()

    def cleanup(self) -> None:
        self.end()
        self.store.engine.dispose()
