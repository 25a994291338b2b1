"""Operating the server: admin actions on a live server, SIGTERM, start-up output and errors."""

from __future__ import annotations

import re
import ssl
import subprocess
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.e2e.client import tls_context
from tests.e2e.conftest import BIN, ServerFactory, ServerProcess
from tests.e2e.helpers import assert_error, join, send_room
from tests.serverproc import password_of


def test_adduser_on_a_live_server(server: ServerProcess) -> None:
    password = "fresh account password"
    server.admin("adduser", "Newcomer", "--password-stdin", stdin=password + "\n")
    client = server.connect()
    assert client.login("newcomer", password)["user"] == "Newcomer"


def test_disabled_account_is_disconnected_within_five_seconds(server: ServerProcess) -> None:
    victim, bystander = server.new_users(2)
    room = "ops-disable"
    sessions = [server.login(victim) for _ in range(2)]
    join(sessions[0], room)
    watcher = server.member(bystander, room)

    server.admin("disable", victim)
    disabled_at = time.monotonic()
    for session in sessions:
        session.expect_bye("account_disabled", timeout=6)
        session.take_queued()
    assert time.monotonic() - disabled_at <= 5.0
    assert watcher.expect("presence", user=victim)["status"] == "offline"

    reply = server.connect().request(
        {"type": "login", "username": victim, "password": password_of(victim)}
    )
    assert_error(reply, "auth_failed")
    server.admin("enable", victim)
    assert server.connect().login(victim, password_of(victim))["user"] == victim


def test_deleted_account_is_disconnected(server: ServerProcess) -> None:
    doomed = server.new_user()
    session = server.login(doomed)
    server.admin("deluser", doomed, "--yes")
    session.expect_bye("account_disabled", timeout=6)


def test_sigterm_says_bye_stores_acked_messages_and_exits_zero(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    sender_name, listener_name = server.new_users(2)
    room = "ops-shutdown"
    sender = server.login(sender_name)
    listener = server.login(listener_name)
    join(sender, room)
    join(listener, room)
    idle = server.connect()  # not logged in: it is told too

    # Requests still in flight when the signal comes: each either gets its ok or not.
    reqs = [f"late-{n}" for n in range(50)]
    for req in reqs:
        sender.send({"type": "send", "room": room, "text": req, "req": req})
    first = sender.expect("ok", req=reqs[0])
    stopping = time.monotonic()
    assert server.process is not None
    server.process.terminate()

    acked = {first["id"]: first["req"]}
    for frame in sender.expect_bye("shutdown", timeout=8):
        if frame["type"] == "ok":
            acked[frame["id"]] = frame["req"]
    listener.expect_bye("shutdown", timeout=8)
    idle.expect_bye("shutdown", timeout=8)
    assert server.wait_exit() == 0
    assert time.monotonic() - stopping < 6

    server.restart()
    page = server.login(listener_name).request({"type": "history", "room": room, "limit": 500})
    stored = {m["id"]: m["text"] for m in page["messages"]}
    missing = {i: t for i, t in acked.items() if stored.get(i) != t}
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged messages lost"


def _fingerprint(server: ServerProcess) -> str:
    pem = server.settings["tls"]["cert_file"].read_bytes()
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()


def test_startup_output_names_address_tls_fingerprint_database_and_no_secrets(
    server: ServerProcess,
) -> None:
    user = server.new_user()
    client = server.member(user, "ops-banner")
    secret_text = "the text of this message is nobody's business"
    send_room(client, "ops-banner", secret_text)
    client.send({"type": "logout"})
    client.expect_bye("logout")

    output = server.output()
    assert f"127.0.0.1:{server.port}" in output
    assert "TLS 1.2" in output
    assert "TLS 1.3" in output
    hex_only = re.sub(r"[^0-9a-f]", "", output.lower())
    assert _fingerprint(server) in hex_only
    assert str(server.db_path) in output
    # No secrets: not the key, not a password, not message text (logging is at INFO).
    assert "PRIVATE KEY" not in output
    assert password_of(user) not in output
    assert secret_text not in output
    # Logins are logged, with the user.
    assert user in output


def test_missing_certificate_is_a_clear_error(server_factory: ServerFactory) -> None:
    broken = server_factory(
        {"tls": {"cert_file": "missing/server.pem", "key_file": "missing/server.key"}},
        start=False,
    )
    result = subprocess.run(
        [str(BIN / "chatsecure-server"), "--config", str(broken.config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "chatsecure-admin gencert" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def _handshake(server: ServerProcess, version: ssl.TLSVersion) -> str | None:
    """The negotiated version when the client offers only ``version``; None if refused."""
    context = tls_context(server.ca_file)
    context.minimum_version = context.maximum_version = version
    try:
        client = server.connect(context=context)
    except (ssl.SSLError, OSError):
        return None
    assert client.hello is not None
    return client.sock.version()


def test_tls_versions_of_the_profiles(server_factory: ServerFactory) -> None:
    intermediate = server_factory()
    assert _handshake(intermediate, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(intermediate, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    modern = server_factory({"tls": {"profile": "modern"}})
    assert _handshake(modern, ssl.TLSVersion.TLSv1_2) is None
    assert _handshake(modern, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
