"""check: one OK/WARN/FAIL line per point, exit 1 on any FAIL (for ExecStartPre=)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from chatsecure.admin.checks import Finding, certificate_findings
from chatsecure.config import TlsSettings, load_settings
from chatsecure.tls_certs import CertificatePaths, make_dev_certificates, write_dev_certificates
from tests.admin.conftest import Admin
from tests.serverproc import HOST, free_port


def _levels(output: str) -> dict[str, list[str]]:
    """topic -> the levels of its lines, in order."""
    levels: dict[str, list[str]] = {}
    for line in output.splitlines():
        level, rest = line.split(None, 1)
        levels.setdefault(rest.split(":", 1)[0], []).append(level)
    return levels


@pytest.fixture
def ready(admin_for, write_config, tmp_path):
    """A set-up that passes: certificates, a migrated database with private modes, a free port."""
    admin = admin_for(write_config(tmp_path, server={"host": HOST, "port": free_port()}))
    assert admin("gencert").code == 0
    assert admin("migrate").code == 0
    (tmp_path / "chatsecure.db").chmod(0o600)
    return admin


def test_a_sound_setup_is_all_ok(ready):
    result = ready("check")
    assert result.code == 0, result.out + result.err
    assert _levels(result.out) == {
        "config": ["OK"],
        "certificate": ["OK"],
        "expiry": ["OK"],
        "hostnames": ["OK"],
        "file mode": ["OK", "OK", "OK"],  # server key, CA key, database
        "schema": ["OK"],
        "port": ["OK"],
    }
    assert result.err == ""


def test_a_certificate_near_its_end_warns(ready):
    ready("gencert", "--force", "--days", "10")
    result = ready("check")
    assert result.code == 0
    (line,) = (line for line in result.out.splitlines() if "expiry" in line)
    assert line.startswith("WARN")
    assert "expires in 9 days" in line  # 10 days less the few minutes' backdating


def test_a_host_the_certificate_does_not_name_warns(ready):
    text = ready.config.read_text().replace(f'host = "{HOST}"', 'host = "chat.invalid"')
    ready.config.write_text(text)
    result = ready("check")
    levels = _levels(result.out)
    assert levels["hostnames"] == ["WARN"]
    assert "clients that connect to chat.invalid will not verify" in result.out
    assert levels["port"] == ["FAIL"]  # and it cannot resolve, so the server could not listen
    assert result.code == 1


def test_every_address_is_fine_for_the_certificate(ready):
    ready.config.write_text(ready.config.read_text().replace(f'host = "{HOST}"', 'host = "::"'))
    assert _levels(ready("check").out)["hostnames"] == ["OK"]


def test_a_key_of_another_certificate_fails(ready):
    tls = load_settings(ready.config).tls
    tls.key_file.write_bytes(tls.ca_file.with_suffix(".key").read_bytes())
    result = ready("check")
    assert result.code == 1
    assert f"FAIL  certificate: {tls.key_file} is not the key of {tls.cert_file}" in result.out
    assert result.err == "chatsecure-admin: error: 1 of 7 checks failed\n"


@pytest.mark.parametrize(("mode", "level"), [(0o640, "WARN"), (0o604, "FAIL"), (0o644, "FAIL")])
def test_open_secrets(ready, mode, level):
    key_file = load_settings(ready.config).tls.key_file
    key_file.chmod(mode)
    result = ready("check")
    (line,) = (line for line in result.out.splitlines() if str(key_file) + " is" in line)
    assert line.startswith(level)
    assert f"is {mode:04o}" in line
    assert result.code == (1 if level == "FAIL" else 0)


def test_a_world_readable_database_fails(ready):
    database = ready.config.parent / "chatsecure.db"
    database.chmod(0o644)
    result = ready("check")
    assert f"FAIL  file mode: {database} is 0644" in result.out
    assert result.code == 1


def test_nothing_set_up_yet(admin):
    result = admin("check")
    assert result.code == 1
    levels = _levels(result.out)
    assert levels["certificate"] == ["FAIL"]
    assert "chatsecure-admin gencert" in result.out
    assert levels["schema"] == ["FAIL"]
    assert "chatsecure-admin migrate" in result.out
    assert "Traceback" not in result.out + result.err


def test_a_port_in_use_warns(ready):
    port = load_settings(ready.config).server.port
    with socket.create_server((HOST, port)):
        result = ready("check")
    assert result.code == 0
    assert f"WARN  port: port {port} on {HOST} is in use" in result.out


def test_a_broken_config_is_one_failing_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[server]\nport = 0\n")
    result = Admin(config)("check")
    assert result.code == 1
    assert result.out.startswith("FAIL  config: ")
    assert "[server] port: 0 is out of range" in result.out
    assert result.err == "chatsecure-admin: error: the configuration cannot be used\n"


def _findings_for(
    tmp_path: Path,
    hostnames: list[str],
    host: str,
    now: Callable[[x509.Certificate], datetime],
) -> dict[str, Finding]:
    """certificate_findings for a fresh certificate naming ``hostnames``, at ``now(cert)``."""
    tls = TlsSettings(tmp_path / "s.pem", tmp_path / "s.key", tmp_path / "ca.pem")
    certs = make_dev_certificates(hostnames, days=100)
    paths = CertificatePaths.beside_ca(tls.cert_file, tls.key_file, tls.ca_file)
    write_dev_certificates(certs, paths, overwrite=True)
    moment = now(certs.server_cert)
    return {f.topic: f for f in certificate_findings(tls, host, moment)}


@pytest.mark.parametrize(
    ("hostnames", "host", "level"),
    [
        (["*.example.org"], "chat.example.org", "OK"),
        (["*.example.org"], "a.chat.example.org", "WARN"),
        (["*.example.org"], "example.org", "WARN"),
        (["Chat.Example.org"], "chat.example.ORG", "OK"),
        ([], "0:0::1", "OK"),  # ::1, written another way
        ([], "0.0.0.0", "OK"),
    ],
)
def test_hostnames_match_as_clients_match_them(tmp_path, hostnames, host, level):
    findings = _findings_for(tmp_path, hostnames, host, lambda cert: cert.not_valid_before_utc)
    assert findings["hostnames"].level.value == level


def test_an_expired_or_not_yet_valid_certificate_fails(tmp_path):
    after = _findings_for(tmp_path, [], "localhost", lambda c: c.not_valid_after_utc)
    assert after["expiry"].level.value == "FAIL"
    assert "expired on" in after["expiry"].text
    before = _findings_for(
        tmp_path, [], "localhost", lambda c: c.not_valid_before_utc - timedelta(hours=1)
    )
    assert before["expiry"].level.value == "FAIL"
    assert "not valid before" in before["expiry"].text


def test_a_database_chatsecure_does_not_store_on_is_a_config_failure(
    admin_for, write_config, tmp_path
):
    """Only SQLite and PostgreSQL are stores: another URL fails as config, in one line."""
    url = "mssql+pymssql://chat:s3cret@db.invalid/chat"
    admin = admin_for(write_config(tmp_path, database={"url": url}))
    checked = admin("check")
    assert "FAIL  config:" in checked.out
    assert "not mssql" in checked.out
    for argv in (["users"], ["migrate"], ["check"]):
        result = admin(*argv)
        assert result.code != 0
        assert "Traceback" not in result.err
        assert "s3cret" not in result.out + result.err
