"""The real server run as a service: SIGHUP reloads, its log, metrics, systemd, status.

Each test has a server of its own, some with a certificate of their own that the test
renews with ``chatsecure-admin gencert --force`` (same CA, new certificate).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import stat
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from chatsecure.package import version
from chatsecure.server.transport import certificate_fingerprint
from chatsecure.tls_certs import fingerprint
from tests.admin.conftest import Admin
from tests.conftest import write_config
from tests.e2e.client import ChatClient
from tests.e2e.conftest import (
    ServerFactory,
    ServerProcess,
    make_tls_files,
    merge_config,
    run_admin,
)
from tests.e2e.helpers import assert_error, join, send_room
from tests.irc.client import IrcClients
from tests.serverproc import HOST, free_port, password_of

pytestmark = pytest.mark.timeout(120)

WAIT = 15.0
REPOSITORY = Path(__file__).resolve().parents[2]


def wait_for(server: ServerProcess, pattern: str, after: int = 0) -> str:
    """The first line of the server's output past offset ``after`` matching ``pattern``."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        output = server.output()[after:]
        found = re.search(f"^.*{pattern}.*$", output, re.MULTILINE)
        if found:
            return found.group(0)
        assert server.running, f"the server died:\n{server.output()}"
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in the server's output:\n{server.output()[after:]}")


def reload_server(server: ServerProcess, outcome: str = "reloaded ") -> str:
    """SIGHUP, and the line saying how the reload went."""
    mark = len(server.output())
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)
    return wait_for(server, outcome, after=mark)


def rewrite_config(process: ServerProcess, **sections: dict[str, Any]) -> None:
    """Change the server's config.toml as an admin would, for the next reload."""
    process.settings = merge_config(process.settings, sections)
    write_config(process.directory, **process.settings)


def fail_login(client: ChatClient, username: str, password: str) -> None:
    reply = client.request({"type": "login", "username": username, "password": password})
    assert_error(reply, "auth_failed")


def presented(client: ChatClient) -> str:
    der = client.sock.getpeercert(binary_form=True)
    assert der is not None
    return fingerprint(x509.load_der_x509_certificate(der))


@pytest.fixture
def own_tls(tmp_path: Path) -> dict[str, Path]:
    """A CA and certificate for one test's server, which the test may renew."""
    folder = tmp_path / "tls"
    folder.mkdir()
    return make_tls_files(folder, "--hostname", "localhost")


@pytest.fixture
def servers(tmp_path: Path, own_tls: dict[str, Path]) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path / "servers", own_tls)
    factory.root.mkdir()
    yield factory
    factory.cleanup()


def test_sighup_serves_a_renewed_certificate_and_live_sessions_keep_chatting(
    servers: ServerFactory, own_tls: dict[str, Path]
) -> None:
    server = servers()
    alice, bob = server.new_users(2)
    old_alice, old_bob = server.member(alice, "ops"), server.member(bob, "ops")
    before = certificate_fingerprint(own_tls["cert_file"])
    assert presented(old_alice) == before

    run_admin(own_tls["cert_file"].parent / "config.toml", "gencert", "--force")
    renewed = certificate_fingerprint(own_tls["cert_file"])
    assert renewed != before
    rewrite_config(server, limits={"max_frame_bytes": 32768})
    line = reload_server(server)
    assert "[limits] max_frame_bytes" in line
    assert f"fingerprint {renewed}" in wait_for(server, "TLS certificate for new connections")

    fresh = server.connect()
    assert presented(fresh) == renewed
    assert fresh.hello is not None
    assert fresh.hello["max_frame_bytes"] == 32768  # the new limit, for new sessions
    # The sessions from before go on, on the certificate they shook hands with.
    assert presented(old_alice) == before
    message_id = send_room(old_alice, "ops", "still here")
    assert old_bob.expect("message", id=message_id)["text"] == "still here"
    newcomer = server.login(bob)
    join(newcomer, "ops")
    send_room(old_bob, "ops", "and you?")
    assert newcomer.expect("message", room="ops")["text"] == "and you?"


def test_a_broken_config_or_certificate_is_refused_and_the_server_keeps_serving(
    servers: ServerFactory, own_tls: dict[str, Path]
) -> None:
    server = servers()
    alice, bob = server.new_users(2)
    old_alice, old_bob = server.member(alice, "ops"), server.member(bob, "ops")
    good = server.config.read_text(encoding="utf-8")

    server.config.write_text(good + "\n[limits\n", encoding="utf-8")
    line = reload_server(server, "reload refused")
    assert "the server goes on as it was" in line
    assert "not valid TOML" in line
    rewrite_config(server, limits={"max_connections": 0})
    assert "[limits] max_connections: 0 is out of range" in reload_server(server, "reload refused")
    limits = {"max_connections": 5_000}  # as before
    rewrite_config(server, limits=limits, logging={"file": "no/such/folder/server.log"})
    assert "cannot open the log file" in reload_server(server, "reload refused")

    server.config.write_text(good, encoding="utf-8")
    own_tls["key_file"].write_text("not a key\n", encoding="utf-8")
    assert "unusable" in reload_server(server, "reload refused")

    fresh = server.login(alice)  # still serving new clients, with the old certificate
    assert presented(fresh) == certificate_fingerprint(own_tls["cert_file"])
    message_id = send_room(old_alice, "ops", "after the refusals")
    assert old_bob.expect("message", id=message_id)["text"] == "after the refusals"


def test_a_setting_read_only_at_start_is_reported_as_needing_a_restart(
    servers: ServerFactory,
) -> None:
    server = servers()
    rewrite_config(server, server={"port": free_port()}, auth={"max_failures": 2})
    line = reload_server(server)
    assert "[auth] max_failures" in line
    restart = wait_for(server, "needs a restart")
    assert "[server] port changed" in restart
    assert server.connect().hello is not None  # still on the port it started with


def test_the_failed_login_line_matches_the_documented_fail2ban_filter(
    servers: ServerFactory,
) -> None:
    irc_port = free_port()
    server = servers({"irc": {"enabled": True, "port": irc_port}})
    user = server.new_user()
    client = server.connect()
    tried = 'mallory" from 10.9.8.7 user "x'  # tries to make the line name another address
    fail_login(client, tried, "guess")
    fail_login(client, user, "not-the-password")
    irc = IrcClients(server)
    try:
        wrong = irc.connect()
        wrong.send(f"PASS {user}:also-wrong")
        wrong.send(f"NICK {user}")
        wrong.send("USER x 0 * :x")
        wrong.expect("464")
    finally:
        irc.close()

    docs = (REPOSITORY / "docs" / "deploy.md").read_text(encoding="utf-8")
    (failregex,) = re.findall(r"^failregex = (.+)$", docs, re.MULTILINE)
    pattern = re.compile(failregex.replace("<HOST>", r"(?P<host>\S+)"))
    wait_for(server, f'login failed from {HOST} user "{user}"')
    lines = [line for line in server.output().splitlines() if "login failed" in line]
    assert len(lines) == 3, lines  # the JSON port twice, the IRC port once, one format
    for line in lines:
        found = pattern.search(line)
        assert found is not None, line
        assert found.group("host") == HOST
        assert "guess" not in line
        assert "not-the-password" not in line
        assert "also-wrong" not in line


def test_json_log_file_is_private_and_reopened_on_sighup(servers: ServerFactory) -> None:
    server = servers({"logging": {"file": "logs/server.log", "format": "json"}}, start=False)
    (server.directory / "logs").mkdir()
    server.start()
    log_file = server.directory / "logs" / "server.log"
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    fail_login(server.connect(), "nobody", "guess")
    rotated = log_file.with_suffix(".log.1")
    deadline = time.monotonic() + WAIT
    while "login failed" not in log_file.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, log_file.read_text(encoding="utf-8")
        time.sleep(0.05)
    log_file.rename(rotated)  # as logrotate does, then it sends SIGHUP
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while not log_file.exists() or "reloaded" not in log_file.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    entries = [
        json.loads(line)
        for path in (rotated, log_file)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert {"ts", "level", "logger", "message"} <= set(entries[0])
    refused = [e for e in entries if e["message"].startswith("login failed")]
    assert refused == [
        {
            "ts": refused[0]["ts"],
            "level": "WARNING",
            "logger": "chatsecure.server.core.sessions",
            "message": f'login failed from {HOST} user "nobody"',
        }
    ]
    assert "login failed" in rotated.read_text(encoding="utf-8")
    assert "reloaded" not in rotated.read_text(encoding="utf-8")


def _metrics_text(listen: str) -> str:
    with urllib.request.urlopen(f"http://{listen}/metrics", timeout=WAIT) as response:
        return str(response.read().decode("utf-8"))


def _scrape(listen: str) -> dict[str, float]:
    text = _metrics_text(listen)
    return {
        sample.name + "".join(f"/{v}" for v in sample.labels.values()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_endpoint_counts_what_happened(servers: ServerFactory) -> None:
    listen = f"{HOST}:{free_port()}"
    text = "z" * 30_000
    limits = {"max_queued_bytes": 65_536, "max_text_chars": len(text)}
    server = servers({"metrics": {"listen": listen}, "limits": limits})
    alice, bob = server.new_users(2)
    first, second = server.member(alice, "ops"), server.member(bob, "ops")
    fail_login(server.connect(), alice, "wrong")
    for n in range(5):
        send_room(first, "ops", f"m{n}")
    second.sync()

    # An event is counted just after its reply leaves, so the last one may lag a little.
    deadline = time.monotonic() + WAIT
    while (metrics := _scrape(listen))["chatsecure_messages_stored_total"] < 5:
        assert time.monotonic() < deadline, metrics
        time.sleep(0.05)
    assert metrics[f"chatsecure_info/{version()}"] == 1
    assert metrics["chatsecure_logins_total/ok"] == 2
    assert metrics["chatsecure_logins_total/failed"] == 1
    assert metrics["chatsecure_logins_total/throttled"] == 0
    assert metrics["chatsecure_messages_stored_total"] == 5
    assert metrics["chatsecure_message_batch_size_sum"] == 5
    assert metrics["chatsecure_message_batch_size_count"] >= 1
    assert metrics["chatsecure_connections_total"] == 3
    assert metrics["chatsecure_open_connections"] == 3
    assert metrics["chatsecure_sessions_logged_in"] == 2
    assert metrics["chatsecure_users_online"] == 2
    assert metrics["chatsecure_message_queue_depth"] == 0
    assert metrics["chatsecure_queued_bytes"] >= 0
    assert metrics["chatsecure_slow_consumer_drops_total"] == 0
    assert 86400 < metrics["chatsecure_certificate_expiry_seconds"] < 800 * 86400
    assert metrics["chatsecure_start_time_seconds"] <= time.time()
    exposition = _metrics_text(listen)
    assert alice not in exposition
    assert bob not in exposition
    assert HOST not in exposition  # counts, no names and no addresses

    # A client that stops reading: its queue passes the bound, and it is dropped.
    sleeper = server.new_user()
    slow = server.connect(receive_buffer=4096)  # so that the server's queue fills sooner
    slow.login_and_settle(sleeper, password_of(sleeper))
    join(slow, "slow")  # from here on it never reads again
    join(first, "slow")
    for n in range(1, 501):  # at most 15 MB towards it
        send_room(first, "slow", text)
        first.take_queued()  # its own copies
        if n % 20 == 0 and _scrape(listen)["chatsecure_slow_consumer_drops_total"] == 1:
            break
    else:
        raise AssertionError("the client that never reads was never dropped")


def test_the_service_manager_hears_ready_reloading_and_stopping(servers: ServerFactory) -> None:
    name = f"chatsecure-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind("\0" + name)
        manager.settimeout(WAIT)
        server = servers(start=False)
        server.env = {**(server.env or {}), "NOTIFY_SOCKET": "@" + name}
        server.start()
        assert b"READY=1" in manager.recv(4096).split(b"\n")
        assert server.connect().hello is not None  # ready meant listening
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        reloading = manager.recv(4096).split(b"\n")
        assert b"RELOADING=1" in reloading
        assert any(field.startswith(b"MONOTONIC_USEC=") for field in reloading)
        assert b"READY=1" in manager.recv(4096).split(b"\n")
        server.process.send_signal(signal.SIGTERM)
        assert b"STOPPING=1" in manager.recv(4096).split(b"\n")
        assert server.wait_exit() == 0


def test_status_reports_the_running_server(servers: ServerFactory, own_tls: dict[str, Path]):
    listen = f"{HOST}:{free_port()}"
    server = servers({"metrics": {"listen": listen}})
    user = server.new_user()
    send_room(server.member(user, "ops"), "ops", "counted")
    admin = Admin(server.config)
    result = admin("status")
    assert result.code == 0, result.err
    out = result.out
    assert f"server: chatsecure {version()}" in out
    assert f"(the one in {own_tls['cert_file']})" in out
    assert re.search(r"^uptime: \d+:\d\d:\d\d$", out, re.MULTILINE), out
    assert "sessions logged in: 1" in out
    assert "connections: 1" in out
    assert "messages stored: 1" in out

    run_admin(own_tls["cert_file"].parent / "config.toml", "gencert", "--force")
    assert "reload the server" in admin("status").out
    server.stop()
    stopped = admin("status")
    assert stopped.code == 1
    assert "no chatsecure server answers" in stopped.err
    assert password_of(user) not in out
