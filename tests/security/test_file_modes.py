"""Secrets on disk: the database (hashes, every message) and the TLS key stay private.

Under the common umask 022 a file is created 0644, world-readable: another user of the
machine could copy password hashes and message text out of ``chat.db`` and its ``-wal``.
Here the database is made by ``chatsecure-admin migrate`` and opened by a live server,
as in production, and the server is started on files others can read. (Modes are
checked rather than read as another user: the suite may run as root.)
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.e2e.conftest import ServerFactory, ServerProcess, merge_config

REFUSAL_TIMEOUT = 10.0


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, so a file created without care is world-readable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def own_tls(tmp_path: Path, tls_files: dict[str, Path]) -> dict[str, Path]:
    """A copy of the certificate and key, whose modes this test may change."""
    folder = tmp_path / "tls"
    folder.mkdir()
    copies = {name: folder / path.name for name, path in tls_files.items()}
    for name, path in tls_files.items():
        shutil.copy2(path, copies[name])
    return copies


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start_or_refuse(server: ServerProcess) -> subprocess.CompletedProcess[str] | None:
    """Start the server; None if it came up (it is then running), else its refusal."""
    try:
        server.start()
    except AssertionError:
        assert server.process is not None
        return subprocess.CompletedProcess(
            server.command, server.process.wait(REFUSAL_TIMEOUT), server.output(), ""
        )
    return None


def reconfigure(server: ServerProcess, **sections: dict[str, object]) -> None:
    server.settings = merge_config(server.settings, sections)
    write_config(server.directory, **server.settings)


def test_database_files_and_folders_are_created_private(
    umask_022: None, server_factory: ServerFactory
) -> None:
    server = server_factory({"database": {"url": "sqlite:///data/chat/chat.db"}}, start=False)
    data = server.directory / "data"
    database = data / "chat" / "chat.db"
    assert (mode(data), mode(data / "chat"), mode(database)) == (0o700, 0o700, 0o600)
    server.start()
    client = server.connect()  # the server reads the database in WAL mode: -wal, -shm
    assert client.request({"type": "ping"})["type"] == "pong"
    companions = [database.with_name("chat.db" + s) for s in ("-wal", "-shm")]
    assert all(path.exists() for path in companions)
    assert {path.name: mode(path) for path in [database, *companions]} == {
        "chat.db": 0o600,
        "chat.db-wal": 0o600,
        "chat.db-shm": 0o600,
    }


def test_the_server_refuses_files_others_can_read_until_fixed_or_allowed(
    umask_022: None, tmp_path: Path, own_tls: dict[str, Path]
) -> None:
    factory = ServerFactory(tmp_path / "servers", own_tls)
    (tmp_path / "servers").mkdir()
    try:
        server = factory(start=False)
        server.db_path.chmod(0o644)  # as an older version, or a careless copy, left it
        refusal = start_or_refuse(server)
        assert refusal is not None, "started on a world-readable database"
        assert refusal.returncode == 2
        assert f"{server.db_path} is open to other users (mode 0644)" in refusal.stdout
        assert "chatsecure-admin migrate" in refusal.stdout
        assert "allow_shared_files" in refusal.stdout

        reconfigure(server, database={"allow_shared_files": True})
        assert start_or_refuse(server) is None  # the admin said so
        server.stop()

        reconfigure(server, database={"allow_shared_files": False})
        server.admin("migrate")  # fixes the mode of an existing database
        assert mode(server.db_path) == 0o600
        own_tls["key_file"].chmod(0o640)  # even the group must not read the key
        refusal = start_or_refuse(server)
        assert refusal is not None, "started with a group-readable private key"
        assert f"{own_tls['key_file']} is open to other users (mode 0640)" in refusal.stdout
        assert f"chmod 600 {own_tls['key_file']}" in refusal.stdout

    finally:
        factory.cleanup()
