"""Development certificates: a local CA and a server certificate it signs.

Clients trust the CA (``ca_file``), not the server certificate, so the server certificate
can be renewed without touching the clients. Keys are ECDSA P-256 (small, fast and
accepted everywhere). The server certificate lives at most ``SERVER_MAX_DAYS``, the
limit of Mozilla's intermediate TLS profile (the browsers allow 398), and carries the
extensions strict verifiers (OpenSSL 3 with ``VERIFY_X509_STRICT``) require: critical
basic constraints and key usage, serverAuth, and subject/authority key identifiers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chatsecure.atomicfile import atomic_write

SERVER_MAX_DAYS = 366
SERVER_DEFAULT_DAYS = 365
CA_DAYS = 3650
ALWAYS_NAMES = ("localhost", "127.0.0.1", "::1")
# Backdate a little so a client whose clock runs slightly behind accepts a fresh certificate.
_CLOCK_SKEW = timedelta(minutes=5)
_DNS_NAME = re.compile(
    r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
    re.ASCII,
)

_CA_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chatsecure"),
        x509.NameAttribute(NameOID.COMMON_NAME, "chatsecure development CA"),
    ]
)

_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


@dataclass(frozen=True, slots=True)
class CertificatePaths:
    """Where the four files go; ``ca_key_file`` sits next to the CA certificate."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    ca_key_file: Path

    @classmethod
    def beside_ca(cls, cert_file: Path, key_file: Path, ca_file: Path) -> CertificatePaths:
        """The ``[tls]`` paths, plus the CA key as ``ca_file`` with a ``.key`` suffix."""
        return cls(cert_file, key_file, ca_file, ca_file.with_suffix(".key"))

    def all(self) -> tuple[Path, ...]:
        return (self.ca_file, self.ca_key_file, self.cert_file, self.key_file)


@dataclass(frozen=True, slots=True)
class DevCertificates:
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    server_cert: x509.Certificate
    server_key: ec.EllipticCurvePrivateKey


def _key_usage(*allowed: str) -> x509.KeyUsage:
    """KeyUsage with only ``allowed`` set (the constructor wants all nine flags)."""
    return x509.KeyUsage(**{usage: usage in allowed for usage in _KEY_USAGES})


def alt_names(hostnames: Iterable[str]) -> list[x509.GeneralName]:
    """SANs for ``hostnames`` plus ``ALWAYS_NAMES``, without repeats; ValueError if malformed."""
    names: list[x509.GeneralName] = []
    for raw in (*hostnames, *ALWAYS_NAMES):
        name = _general_name(raw.strip().lower())
        if name not in names:
            names.append(name)
    return names


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if len(host) > 253 or not _DNS_NAME.fullmatch(host):
        raise ValueError(
            f"{host!r} is neither a host name nor an IP address "
            "(non-ASCII names must be given in their xn-- form)"
        )
    return x509.DNSName(host)


def make_ca(now: datetime | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh local CA certificate, valid ``CA_DAYS``, and its key."""
    start = (now or datetime.now(UTC)) - _CLOCK_SKEW
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_CA_NAME)
        .issuer_name(_CA_NAME)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True)
        .add_extension(ca_ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert, ca_key


def issue_server_certificate(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hostnames: Sequence[str] = (),
    days: int = SERVER_DEFAULT_DAYS,
    now: datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new server key and a certificate for ``hostnames`` (plus localhost) signed by the CA."""
    if not 1 <= days <= SERVER_MAX_DAYS:
        raise ValueError(
            f"days must be 1 to {SERVER_MAX_DAYS} (Mozilla's intermediate profile), not {days}"
        )
    names = alt_names(hostnames)
    start = (now or datetime.now(UTC)) - _CLOCK_SKEW
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(names[0].value))]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return server_cert, server_key


def make_dev_certificates(
    hostnames: Sequence[str] = (),
    days: int = SERVER_DEFAULT_DAYS,
    now: datetime | None = None,
) -> DevCertificates:
    """A fresh CA and a server certificate for ``hostnames`` (plus localhost), in memory."""
    ca_cert, ca_key = make_ca(now)
    return DevCertificates(
        ca_cert, ca_key, *issue_server_certificate(ca_cert, ca_key, hostnames, days, now)
    )


def write_dev_certificates(
    certs: DevCertificates, paths: CertificatePaths, *, overwrite: bool
) -> None:
    """Write all four files; without ``overwrite``, refuse (FileExistsError) if any exists.

    Private keys are created mode 0600 (never briefly readable), certificates 0644.
    """
    existing = [p for p in paths.all() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"already exists: {', '.join(map(str, existing))}")
    _write_pair(paths.ca_file, certs.ca_cert, paths.ca_key_file, certs.ca_key)
    _write_pair(paths.cert_file, certs.server_cert, paths.key_file, certs.server_key)


def write_server_certificate(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, paths: CertificatePaths
) -> None:
    """Replace the server certificate and key; the CA's files stay as they are."""
    _write_pair(paths.cert_file, cert, paths.key_file, key)


def load_ca(paths: CertificatePaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The existing CA certificate and key; ValueError (or OSError) says why they cannot sign."""
    ca_cert = load_certificate(paths.ca_file)
    ca_key = load_private_key(paths.ca_key_file)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{paths.ca_key_file}: not an ECDSA key such as gencert makes")
    if not key_matches(ca_cert, ca_key):
        raise ValueError(f"{paths.ca_key_file} is not the key of {paths.ca_file}")
    return ca_cert, ca_key


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM file; ValueError if there is none, OSError if unreadable."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        raise ValueError(f"{path}: not a PEM certificate") from None


def load_private_key(path: Path) -> PrivateKeyTypes:
    """An unencrypted PEM private key; ValueError if it is not one, OSError if unreadable."""
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{path}: not an unencrypted PEM private key") from None


def key_matches(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """Whether ``key`` is the private half of the certificate's public key."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki))


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The host names and addresses the certificate is valid for (its subjectAltName)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *san.get_values_for_type(x509.DNSName),
        *map(str, san.get_values_for_type(x509.IPAddress)),
    ]


def _write_pair(
    cert_path: Path, cert: x509.Certificate, key_path: Path, key: ec.EllipticCurvePrivateKey
) -> None:
    for path in (cert_path, key_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    _write_pem(cert_path, _cert_pem(cert), 0o644)
    _write_pem(key_path, _key_pem(key), 0o600)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_pem(path: Path, pem: bytes, mode: int) -> None:
    with atomic_write(path, overwrite=True, mode=mode) as f:
        f.write(pem.decode("ascii"))


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as ``AB:CD:...``, the form browsers and openssl show."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
