"""gencert: the files, their modes, and a real TLS handshake that verifies them."""

import contextlib
import ssl
import stat
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from chatsecure.config import Settings, load_settings
from chatsecure.tls_certs import SERVER_MAX_DAYS, alt_names, make_dev_certificates


def _handshake(settings: Settings, server_hostname: str) -> str | None:
    """Client and server over memory BIOs; raises ssl.SSLError if verification fails."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(settings.tls.cert_file, settings.tls.key_file)
    client_ctx = ssl.create_default_context(cafile=str(settings.tls.ca_file))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side, outgoing, incoming in ((client, c_out, s_in), (server, s_out, c_in)):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
            incoming.write(outgoing.read())
    return client.version()


def test_gencert_writes_files_that_verify(admin):
    result = admin("gencert", "--hostname", "chat.example.org", "--hostname", "192.0.2.10")
    assert result.code == 0, result.err
    settings = load_settings(admin.config)
    tls = settings.tls
    ca_key = tls.ca_file.with_suffix(".key")
    for path, mode in ((tls.key_file, 0o600), (ca_key, 0o600), (tls.cert_file, 0o644)):
        assert stat.S_IMODE(path.stat().st_mode) == mode
    cert = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert f"SHA-256 fingerprint: {fingerprint}" in result.out
    for name in ("chat.example.org", "localhost", "127.0.0.1", "192.0.2.10"):
        assert _handshake(settings, name) in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(settings, "elsewhere.example.org")


def test_gencert_refuses_to_overwrite_without_force(admin):
    assert admin("gencert").code == 0
    key_file = load_settings(admin.config).tls.key_file
    before = key_file.read_bytes()
    refused = admin("gencert")
    assert refused.code == 1
    assert "--force" in refused.err
    assert key_file.read_bytes() == before
    assert admin("gencert", "--force").code == 0
    assert key_file.read_bytes() != before
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--days", "367"], "days must be 1 to 366"),
        (["--days", "0"], "days must be 1 to 366"),
        (["--hostname", "bad host"], "neither a host name nor an IP address"),
    ],
)
def test_gencert_refusals(admin, argv, problem):
    result = admin("gencert", *argv)
    assert result.code == 1
    assert problem in result.err


def test_certificate_profile():
    certs = make_dev_certificates(["Chat.Example.org"], days=SERVER_MAX_DAYS)
    server, ca = certs.server_cert, certs.ca_cert
    assert isinstance(certs.server_key.curve, ec.SECP256R1)
    assert server.not_valid_after_utc - server.not_valid_before_utc <= timedelta(days=366)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf_bc = server.extensions.get_extension_for_class(x509.BasicConstraints)
    assert leaf_bc.critical
    assert not leaf_bc.value.ca
    usage = server.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = server.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["chat.example.org", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]


def test_alt_names_deduplicate():
    assert len(alt_names(["localhost", "LOCALHOST", "::1"])) == 3


def test_force_renews_the_server_certificate_with_the_same_ca(admin):
    assert admin("gencert", "--hostname", "chat.example.org").code == 0
    settings = load_settings(admin.config)
    tls = settings.tls
    ca_key = tls.ca_file.with_suffix(".key")
    ca_before, ca_key_before = tls.ca_file.read_bytes(), ca_key.read_bytes()
    key_before, cert_before = tls.key_file.read_bytes(), tls.cert_file.read_bytes()
    result = admin("gencert", "--force", "--days", "90")
    assert result.code == 0, result.err
    assert "CA certificate" not in result.out  # nothing about the CA changed
    assert (tls.ca_file.read_bytes(), ca_key.read_bytes()) == (ca_before, ca_key_before)
    assert tls.key_file.read_bytes() != key_before
    assert tls.cert_file.read_bytes() != cert_before
    assert stat.S_IMODE(tls.key_file.stat().st_mode) == 0o600
    # The clients' old ca_file verifies the new certificate, under the old names.
    assert _handshake(settings, "chat.example.org") in ("TLSv1.2", "TLSv1.3")
    renewed = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
    assert (renewed.not_valid_after_utc - renewed.not_valid_before_utc).days == 90
    admin("gencert", "--force", "--hostname", "other.example.org")
    assert _handshake(settings, "other.example.org") in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(settings, "chat.example.org")


def test_new_ca_replaces_the_ca(admin):
    assert admin("gencert").code == 0
    ca_file = load_settings(admin.config).tls.ca_file
    before = ca_file.read_bytes()
    result = admin("gencert", "--new-ca")
    assert result.code == 0, result.err
    assert "CA certificate" in result.out
    assert ca_file.read_bytes() != before
    assert _handshake(load_settings(admin.config), "localhost") in ("TLSv1.2", "TLSv1.3")


def test_force_without_a_ca_key_points_to_new_ca(admin):
    assert admin("gencert").code == 0
    tls = load_settings(admin.config).tls
    tls.ca_file.with_suffix(".key").unlink()
    result = admin("gencert", "--force")
    assert result.code == 1
    assert "ca.key: not found" in result.err
    assert "--new-ca" in result.err
    tls.ca_file.with_suffix(".key").write_text("not a key\n")
    result = admin("gencert", "--force")
    assert result.code == 1
    assert "not an unencrypted PEM private key" in result.err


def test_refusal_names_both_ways_and_they_exclude_each_other(admin):
    assert admin("gencert").code == 0
    refused = admin("gencert")
    assert "--force to renew" in refused.err
    assert "--new-ca" in refused.err
    assert admin("gencert", "--force", "--new-ca").code == 2
