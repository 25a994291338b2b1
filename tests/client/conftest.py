"""Fixtures for the client tests: real servers on loopback and a private config folder."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.server import Certs, ServerProcess, make_certs

_names = itertools.count(1)


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The client's remembered files go to a scratch folder, never the real home."""
    folder = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder / "chatsecure"


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Another CA and certificate: what an impersonator (or a new certificate) presents."""
    return make_certs(tmp_path_factory.mktemp("other-certs"), "other")


@pytest.fixture(scope="session")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, certs: Certs
) -> Iterator[ServerProcess]:
    """One server for tests that use their own users and do not stop it."""
    server = ServerProcess(tmp_path_factory.mktemp("server"), certs)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def own_server(tmp_path: Path, certs: Certs) -> Iterator[ServerProcess]:
    """A server of this test's own, to kill, restart or give another certificate."""
    server = ServerProcess(tmp_path / "server", certs)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def new_user(shared_server: ServerProcess):
    """Make a fresh account on the shared server; returns its name."""

    def make(rooms: tuple[str, ...] = ("general",)) -> str:
        name = f"user{next(_names)}"
        shared_server.add_user(name, rooms)
        return name

    return make
