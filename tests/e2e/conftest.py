"""The real ``chatsecure-server`` as a subprocess, set up the way an admin would.

Certificates come from ``chatsecure-admin gencert`` (once per test session), each
server gets its own folder with a scratch config, a database made by
``chatsecure-admin migrate`` and accounts made by ``chatsecure-admin import-users``
(or ``adduser``). Only 127.0.0.1 is used.

Two fixtures start servers:

* ``server``: one per test module, configured by the module's ``SERVER_CONFIG``
  (merged over ``BASE_CONFIG``); tests that share it use distinct users and rooms.
* ``server_factory``: servers of a test's own, for tests that kill, stop or restart them
  or need unusual limits.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config
from tests.e2e.client import ChatClient
from tests.e2e.helpers import join
from tests.serverproc import HOST, LoggedProcess, free_port, password_of

BIN = Path(sys.executable).parent
ADMIN_TIMEOUT = 120.0
# Accounts are made this many at a time: an admin process costs ~0.7 s, an account ~30 ms.
USER_BATCH = 24

# Generous limits: a test about a limit lowers the one it checks.
BASE_CONFIG: dict[str, dict[str, Any]] = {
    "server": {"host": HOST},
    "database": {"url": "sqlite:///chat.db"},
    "auth": {"bcrypt_rounds": 10, "max_failures_per_address": 100_000},
    "history": {"on_login": 50},
    "rooms": {"default": [], "users_can_create": True},
    "limits": {
        "messages_per_second": 100_000,
        "message_burst": 100_000,
        "max_connections": 5_000,
        "max_connections_per_address": 5_000,
        "max_unauthenticated": 5_000,
        "max_unauthenticated_per_address": 5_000,
    },
}


def merge_config(
    base: Mapping[str, Mapping[str, Any]], *overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    merged = {section: dict(values) for section, values in base.items()}
    for override in overrides:
        for section, values in override.items():
            merged.setdefault(section, {}).update(values)
    return merged


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CHATSECURE_CONFIG"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_admin(
    config: Path, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``chatsecure-admin --config CONFIG ARGS...`` as a separate process."""
    result = subprocess.run(
        [
            str(BIN / "chatsecure-admin"),
            "--config",
            str(config),
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=ADMIN_TIMEOUT,
        env=_environment(),
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"chatsecure-admin {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


class ServerProcess(LoggedProcess):
    """One server: its folder, config, database and process; start/stop/kill/restart."""

    _names = itertools.count(1)

    def __init__(self, directory: Path, tls: Mapping[str, Path], config: Mapping[str, Any]):
        self.directory = directory
        self.port = free_port()
        self.ca_file = Path(tls["ca_file"])
        self.settings = merge_config(
            BASE_CONFIG,
            {"server": {"port": self.port}, "tls": dict(tls)},
            config,
        )
        self.config = write_config(directory, **self.settings)
        self.db_path = directory / "chat.db"
        super().__init__(
            [str(BIN / "chatsecure-server"), "--config", str(self.config)],
            directory / "server.log",
            f"listening on {HOST}:{self.port}",
            env=_environment(),
        )
        self.clients: list[ChatClient] = []
        self._spare_users: list[str] = []
        self._user_prefix = f"u{next(self._names)}x"
        self._user_numbers = itertools.count(1)
        run_admin(self.config, "migrate")

    def restart(self) -> None:
        if self.running:
            self.stop()
        self.close_clients()
        self.start()

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()

    def cleanup(self) -> None:
        self.close_clients()
        self.end()

    # --- accounts --------------------------------------------------------------------

    def admin(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run_admin(self.config, *args, stdin=stdin, check=check)

    def add_users(self, names: list[str]) -> None:
        """Create accounts (password ``password_of(name)``) in one admin process."""
        csv = self.directory / f"users-{names[0]}.csv"
        rows = ["username,password", *(f"{name},{password_of(name)}" for name in names)]
        csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
        self.admin("import-users", str(csv))

    def new_users(self, count: int) -> list[str]:
        """``count`` accounts no other test has used; created in batches to save time."""
        if len(self._spare_users) < count:
            batch = max(count - len(self._spare_users), USER_BATCH)
            names = [f"{self._user_prefix}{next(self._user_numbers)}" for _ in range(batch)]
            self.add_users(names)
            self._spare_users.extend(names)
        taken, self._spare_users = self._spare_users[:count], self._spare_users[count:]
        return taken

    def new_user(self) -> str:
        return self.new_users(1)[0]

    # --- clients ---------------------------------------------------------------------

    def connect(self, **options: Any) -> ChatClient:
        """A connected client (``hello`` read), closed when the test ends."""
        client = ChatClient(HOST, self.port, self.ca_file, **options)
        self.clients.append(client)
        return client

    def login(self, user: str, **options: Any) -> ChatClient:
        """A client logged in as ``user``, with the frames login sends already taken."""
        client = self.connect(**options)
        client.login_and_settle(user, password_of(user))
        return client

    def member(self, user: str, room: str) -> ChatClient:
        """A client logged in as ``user`` that has joined ``room`` (its replies taken)."""
        client = self.login(user)
        join(client, room)
        return client


def make_tls_files(folder: Path, *gencert_options: str) -> dict[str, Path]:
    """A CA and server certificate in ``folder``, made by ``chatsecure-admin gencert``."""
    tls = {
        "cert_file": folder / "server.pem",
        "key_file": folder / "server.key",
        "ca_file": folder / "ca.pem",
    }
    run_admin(write_config(folder, tls=tls), "gencert", *gencert_options)
    return tls


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and server certificate made by ``chatsecure-admin gencert``, shared by all."""
    return make_tls_files(tmp_path_factory.mktemp("e2e-certs"), "--hostname", "localhost")


class ServerFactory:
    def __init__(self, root: Path, tls: Mapping[str, Path]) -> None:
        self.root = root
        self.tls = tls
        self.servers: list[ServerProcess] = []

    def __call__(
        self, config: Mapping[str, Any] | None = None, *, start: bool = True
    ) -> ServerProcess:
        directory = self.root / f"server{len(self.servers) + 1}"
        directory.mkdir()
        server = ServerProcess(directory, self.tls, config or {})
        self.servers.append(server)
        if start:
            server.start()
        return server

    def cleanup(self) -> None:
        for server in self.servers:
            server.cleanup()


@pytest.fixture
def server_factory(tmp_path: Path, tls_files: dict[str, Path]) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path, tls_files)
    yield factory
    factory.cleanup()


@pytest.fixture(scope="module")
def module_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tls_files: dict[str, Path],
) -> Iterator[ServerProcess]:
    """One running server per module, configured by the module's ``SERVER_CONFIG``."""
    factory = ServerFactory(tmp_path_factory.mktemp("e2e-server"), tls_files)
    started = factory(getattr(request.module, "SERVER_CONFIG", None))
    yield started
    factory.cleanup()


@pytest.fixture
def server(module_server: ServerProcess) -> Iterator[ServerProcess]:
    """The module's server; the clients a test opens on it are closed when it ends."""
    assert module_server.running, f"the module's server died:\n{module_server.output()}"
    yield module_server
    module_server.close_clients()
