"""Secrets: what the server logs, how keys are written, what the client keeps.

A session full of marker strings (passwords right and wrong, a changed password,
room and direct message text) runs against a server logging at INFO; afterwards the
log holds none of them, nor any account's bcrypt hash. ``gencert`` writes private keys
0600 even under a permissive umask. The desktop client's logic logs in, changes its
password and trusts a certificate; none of the files it leaves holds a password.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from chatsecure.client.events import LoggedIn
from chatsecure.client.network import Credentials, ServerAddress
from chatsecure.client.session import ChatSession, PasswordResult
from chatsecure.client.trust import TrustStore
from tests.client.helpers import Driver
from tests.conftest import write_config
from tests.e2e.conftest import BIN, ServerFactory
from tests.e2e.helpers import join, send_direct, send_room
from tests.serverproc import HOST, password_of

WRONG = "wrong-pass-marker-5d1c"
NEW_PASSWORD = "new-pass-marker-a8e2 long enough"
ROOM_TEXT = "room-text-marker-19b4"
DIRECT_TEXT = "direct-text-marker-77c0"
CLIENT_NEW_PASSWORD = "client-new-pass-marker-3e9f long"


def test_no_password_hash_or_message_text_in_the_server_log(
    server_factory: ServerFactory,
) -> None:
    server = server_factory({"logging": {"level": "INFO"}})
    alice, bob = server.new_users(2)
    failed = server.connect()
    reply = failed.request({"type": "login", "username": alice, "password": WRONG})
    assert reply["code"] == "auth_failed"
    a, b = server.login(alice), server.login(bob)
    join(a, "secrets")
    join(b, "secrets")
    send_room(a, "secrets", ROOM_TEXT)
    send_direct(a, bob, DIRECT_TEXT)
    b.expect("message", text=DIRECT_TEXT)
    reply = a.request({"type": "passwd", "old": password_of(alice), "new": NEW_PASSWORD})
    assert reply["type"] == "ok", reply
    a.request({"type": "passwd", "old": WRONG, "new": NEW_PASSWORD + "x"})
    a.send({"type": "logout"})
    a.expect_bye("logout")
    assert server.stop() == 0

    log = server.output()
    assert "logged in" in log, "the log should record the session, or this proves nothing"
    with sqlite3.connect(server.db_path) as db:
        hashes = [h for (h,) in db.execute("SELECT password_hash FROM accounts")]
    assert hashes
    secrets = [
        password_of(alice),
        password_of(bob),
        WRONG,
        NEW_PASSWORD,
        ROOM_TEXT,
        DIRECT_TEXT,
        *hashes,
    ]
    leaked = [secret for secret in secrets if secret in log]
    assert not leaked, leaked
    assert "$2b$" not in log


def test_gencert_writes_private_keys_0600_even_under_umask_000(tmp_path: Path) -> None:
    tls = {
        "cert_file": tmp_path / "server.pem",
        "key_file": tmp_path / "server.key",
        "ca_file": tmp_path / "ca.pem",
    }
    config = write_config(tmp_path, tls=tls)
    admin = BIN / "chatsecure-admin"
    subprocess.run(
        ["/bin/sh", "-c", f'umask 000; exec "{admin}" --config "{config}" gencert'],
        check=True,
        capture_output=True,
        timeout=60,
    )
    keys = sorted(tmp_path.glob("*.key"))
    assert {k.name for k in keys} >= {"server.key", "ca.key"}, keys
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for cert in tmp_path.glob("*.pem"):
        assert b"PRIVATE KEY" not in cert.read_bytes(), cert


@pytest.fixture
def client_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The client's config folder, private to this test."""
    home = tmp_path / "client"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    monkeypatch.setenv("HOME", str(home))
    return home


def test_the_client_never_stores_a_password(
    server_factory: ServerFactory, client_home: Path
) -> None:
    server = server_factory()
    user = server.new_user()
    trust = TrustStore()
    # Trust-on-first-use pins a fingerprint in the config folder: a file the client writes.
    trust.remember(HOST, server.port + 1, "AB:CD")
    session = ChatSession(
        ServerAddress(HOST, server.port, server.ca_file),
        Credentials(user, password_of(user)),
        trust,
    )
    session.start()
    driver = Driver(session)
    try:
        driver.wait(LoggedIn)
        session.change_password(password_of(user), CLIENT_NEW_PASSWORD)
        assert driver.wait(PasswordResult).ok
    finally:
        session.close()

    written = [p for p in client_home.rglob("*") if p.is_file()]
    assert any(p.name == "last_login.json" for p in written), written
    for path in written:
        data = path.read_bytes()
        for secret in (password_of(user), CLIENT_NEW_PASSWORD):
            assert secret.encode() not in data, path
    # And the folder is private to the user.
    folder = client_home / "xdg" / "chatsecure"
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, oct(folder.stat().st_mode)
    assert os.environ["XDG_CONFIG_HOME"].startswith(str(client_home))
