"""TLS as an outsider sees it: sslyze scans the live server and checks Mozilla's profiles.

sslyze's ``check_server_against_tls_configuration`` judges the whole deployment: versions,
cipher suites, key-exchange groups, known TLS vulnerabilities (Heartbleed, CCS injection,
ROBOT, compression, insecure renegotiation, no fallback SCSV, no extended master secret)
and the certificate. Two things about the certificate are the operator's, not the
server's, and are set up honestly rather than waved through:

* trust: our certificates come from a private CA, so sslyze validates the chain against
  that CA (``custom_ca_file``) instead of the public trust stores;
* lifetime: Mozilla's modern profile allows at most 90 days, so these scans use a
  certificate made by ``chatsecure-admin gencert --days 90``.

Nothing in the checker's verdict is filtered: any issue it reports fails the test.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sslyze.mozilla_tls_profile.tls_config_checker import (
    SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
    MozillaTlsConfiguration,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)
from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
from sslyze.scanner.models import (
    ScanCommandsExtraArguments,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)
from sslyze.scanner.scanner import Scanner
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from tests.e2e.conftest import ServerFactory, make_tls_files
from tests.serverproc import HOST

pytestmark = [
    pytest.mark.slow,
    # sslyze loads its bundled public trust stores too; a few of their roots have
    # serial numbers that cryptography warns about. Not ours, and not what we check.
    pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive"),
]

PROFILES = {
    "intermediate": TlsConfigurationEnum.MOZILLA_INTERMEDIATE,
    "modern": TlsConfigurationEnum.MOZILLA_MODERN,
}
LEGACY_VERSIONS = (
    "ssl_2_0_cipher_suites",
    "ssl_3_0_cipher_suites",
    "tls_1_0_cipher_suites",
    "tls_1_1_cipher_suites",
)


@pytest.fixture(scope="module")
def scan_tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Certificates as ``gencert`` makes them, with a lifetime both profiles accept."""
    return make_tls_files(tmp_path_factory.mktemp("scan-certs"), "--days", "90")


@pytest.fixture(scope="module")
def scans(
    tmp_path_factory: pytest.TempPathFactory, scan_tls: dict[str, Path]
) -> Iterator[dict[str, ServerScanResult]]:
    """One live server per profile, both scanned at once; results by profile name."""
    factory = ServerFactory(tmp_path_factory.mktemp("scan-servers"), scan_tls)
    try:
        servers = {name: factory({"tls": {"profile": name}}) for name in PROFILES}
        certificate_info = CertificateInfoExtraArgument(custom_ca_file=scan_tls["ca_file"])
        scanner = Scanner()
        scanner.queue_scans(
            [
                ServerScanRequest(
                    server_location=ServerNetworkLocation("localhost", server.port, HOST),
                    network_configuration=ServerNetworkConfiguration("localhost"),
                    scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
                    scan_commands_extra_arguments=ScanCommandsExtraArguments(
                        certificate_info=certificate_info
                    ),
                )
                for server in servers.values()
            ]
        )
        by_port = {result.server_location.port: result for result in scanner.get_results()}
        yield {name: by_port[server.port] for name, server in servers.items()}
        for server in servers.values():
            assert server.running, server.output()
    finally:
        factory.cleanup()


@pytest.mark.parametrize("profile", PROFILES)
def test_server_complies_with_the_mozilla_profile(
    scans: dict[str, ServerScanResult], profile: str
) -> None:
    result = scans[profile]
    assert result.scan_status is ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    # Raises ServerNotCompliantWithTlsConfiguration listing every issue found.
    check_server_against_tls_configuration(result, MozillaTlsConfiguration.get(PROFILES[profile]))


@pytest.mark.parametrize("profile", PROFILES)
def test_nothing_below_tls_1_2_and_modern_is_tls_1_3_only(
    scans: dict[str, ServerScanResult], profile: str
) -> None:
    attempts = scans[profile].scan_result
    assert attempts is not None
    for version in LEGACY_VERSIONS:
        result = getattr(attempts, version).result
        assert not result.is_tls_version_supported, version
        assert not result.accepted_cipher_suites, version
    tls12 = attempts.tls_1_2_cipher_suites.result
    assert tls12 is not None
    assert tls12.is_tls_version_supported is (profile == "intermediate")
    if profile == "intermediate":
        # Forward secrecy and AEAD only.
        for accepted in tls12.accepted_cipher_suites:
            name = accepted.cipher_suite.name
            assert name.startswith("TLS_ECDHE_"), name
            assert "GCM" in name or "CHACHA20" in name, name
    tls13 = attempts.tls_1_3_cipher_suites.result
    assert tls13 is not None
    assert tls13.is_tls_version_supported


@pytest.mark.parametrize(
    "greeting",
    [
        b'{"type":"ping","req":1}\n',
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x00" * 64,
    ],
    ids=["chat-frame", "http", "zeros"],
)
def test_plaintext_gets_no_hello_and_the_connection_closes(
    server_factory: ServerFactory, greeting: bytes
) -> None:
    server = server_factory({"tls": {"handshake_timeout": 2}})
    with socket.create_connection((HOST, server.port), timeout=5) as raw:
        raw.sendall(greeting)
        received = bytearray()
        started = time.monotonic()
        while chunk := raw.recv(4096):
            received += chunk
        closed_after = time.monotonic() - started
    # At most a TLS alert record (content type 21), never a chat frame.
    assert b"hello" not in received
    assert not received or received[0] == 21, bytes(received)
    assert closed_after < 2, "closed at once, not by the handshake timeout"
    assert server.running
