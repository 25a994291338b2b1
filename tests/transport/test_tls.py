"""The server's TLS context, checked by real handshakes: versions, suites and groups."""

from __future__ import annotations

import dataclasses
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from chatsecure.server.transport import TlsSetupError, certificate_fingerprint, server_context
from chatsecure.server.transport import tls as tls_module
from tests.transport.conftest import (
    TIMEOUT,
    StartServer,
    TlsFiles,
    client_context,
    connect,
    make_settings,
)

pytestmark = pytest.mark.timeout(60)

MOZILLA_INTERMEDIATE_TLS12 = set(tls_module.INTERMEDIATE_CIPHERS.split(":"))
FAILED_HANDSHAKE = (ssl.SSLError, ConnectionError, EOFError)


def pinned(
    tls_files: TlsFiles,
    version: ssl.TLSVersion,
    *,
    ciphers: str | None = None,
    curve: str | None = None,
) -> ssl.SSLContext:
    """A client context that offers only ``version`` (and the given suites / group)."""
    context = client_context(tls_files)
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL 3 offer TLS 1.0/1.1 at all
    context.minimum_version = version
    context.maximum_version = version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if curve is not None:
        context.set_ecdh_curve(curve)  # under OpenSSL 3: this one group and no other
    return context


def handshake(address: tuple[str, int], context: ssl.SSLContext) -> tuple[str, str]:
    """The negotiated (version, cipher), after a full exchange with the fake core."""
    client = connect(address, context)
    try:
        cipher = client.sock.cipher()
        version = client.sock.version()
        assert cipher is not None
        assert version is not None
        return version, cipher[0]
    finally:
        client.close()


@pytest.fixture
def permissive_server(tls_files: TlsFiles) -> Iterator[tuple[str, int]]:
    """A plain TLS 1.0-1.3 server, to prove a pinned client really can speak its version."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.load_cert_chain(tls_files.cert, tls_files.key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def serve() -> None:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        raw.settimeout(TIMEOUT)
        try:
            with context.wrap_socket(raw, server_side=True) as sock:
                sock.sendall(
                    b'{"type":"hello","server":"chatsecure","version":1,"max_frame_bytes":65536}\n'
                )
                sock.recv(1)
        except OSError:
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    yield listener.getsockname()[:2]
    listener.close()
    thread.join(TIMEOUT)


def test_context_follows_the_intermediate_profile(tls_files: TlsFiles) -> None:
    context = server_context(make_settings(tls_files).tls)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.options & ssl.OP_NO_TICKET
    assert context.num_tickets == 0
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == MOZILLA_INTERMEDIATE_TLS12
    assert not any("CBC" in c["description"] for c in context.get_ciphers())


def test_the_pinned_tls11_client_works_against_a_permissive_server(
    tls_files: TlsFiles, permissive_server: tuple[str, int]
) -> None:
    version, _ = handshake(permissive_server, pinned(tls_files, ssl.TLSVersion.TLSv1_1))
    assert version == "TLSv1.1"


@pytest.mark.parametrize(
    ("profile", "version", "accepted"),
    [
        ("intermediate", ssl.TLSVersion.TLSv1_1, False),
        ("intermediate", ssl.TLSVersion.TLSv1_2, True),
        ("intermediate", ssl.TLSVersion.TLSv1_3, True),
        ("modern", ssl.TLSVersion.TLSv1_2, False),
        ("modern", ssl.TLSVersion.TLSv1_3, True),
    ],
)
def test_protocol_versions(
    start_server: StartServer,
    tls_files: TlsFiles,
    profile: str,
    version: ssl.TLSVersion,
    accepted: bool,
) -> None:
    server = start_server(tls={"profile": profile})
    context = pinned(tls_files, version)
    if accepted:
        negotiated, _ = handshake(server.address, context)
        assert (
            negotiated
            == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        )
    else:
        with pytest.raises(FAILED_HANDSHAKE):
            handshake(server.address, context)


@pytest.mark.parametrize(
    ("ciphers", "accepted"),
    [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", True),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", True),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", True),
        ("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA", False),  # CBC
        ("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384", False),  # CBC
    ],
)
def test_only_intermediate_tls12_suites_negotiate(
    start_server: StartServer, tls_files: TlsFiles, ciphers: str, accepted: bool
) -> None:
    server = start_server()
    context = pinned(tls_files, ssl.TLSVersion.TLSv1_2, ciphers=ciphers)
    if accepted:
        assert handshake(server.address, context) == ("TLSv1.2", ciphers)
    else:
        with pytest.raises(FAILED_HANDSHAKE):
            handshake(server.address, context)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize(
    ("curve", "accepted"),
    [
        ("X25519", True),
        ("prime256v1", True),
        ("secp384r1", True),
        ("X448", False),
        ("secp521r1", False),
    ],
)
def test_only_x25519_p256_p384_key_exchange(
    start_server: StartServer,
    rsa_tls_files: TlsFiles,
    version: ssl.TLSVersion,
    curve: str,
    accepted: bool,
) -> None:
    server = start_server(tls={"cert_file": rsa_tls_files.cert, "key_file": rsa_tls_files.key})
    context = pinned(rsa_tls_files, version, curve=curve)
    if accepted:
        handshake(server.address, context)
    else:
        with pytest.raises(FAILED_HANDSHAKE):
            handshake(server.address, context)


def test_groups_fallback_offers_p256_only_and_warns(
    start_server: StartServer,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(tls_module, "_native_ctrl", lambda _context: None)
    with caplog.at_level(logging.WARNING):
        server = start_server()
    assert "key-exchange groups" in caplog.text
    handshake(server.address, pinned(tls_files, ssl.TLSVersion.TLSv1_3, curve="prime256v1"))
    with pytest.raises(FAILED_HANDSHAKE):
        handshake(server.address, pinned(tls_files, ssl.TLSVersion.TLSv1_3, curve="X25519"))


@pytest.mark.parametrize("missing", ["cert_file", "key_file"])
def test_missing_certificate_or_key_says_run_gencert(
    tls_files: TlsFiles, tmp_path: Path, missing: str
) -> None:
    settings = make_settings(tls_files, tls={missing: tmp_path / "absent.pem"})
    with pytest.raises(TlsSetupError, match="chatsecure-admin gencert"):
        server_context(settings.tls)


def test_a_key_that_does_not_match_is_a_clear_error(tls_files: TlsFiles) -> None:
    settings = make_settings(tls_files)
    tls = dataclasses.replace(settings.tls, key_file=tls_files.cert)  # a cert is no key
    with pytest.raises(TlsSetupError, match="gencert"):
        server_context(tls)


def test_certificate_fingerprint(tls_files: TlsFiles) -> None:
    cert = x509.load_pem_x509_certificate(tls_files.cert.read_bytes())
    expected = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert certificate_fingerprint(tls_files.cert) == expected
    assert len(expected.split(":")) == 32
