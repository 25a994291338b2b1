"""The server's TLS context: Mozilla's *intermediate* or *modern* profile, nothing weaker.

The intermediate profile as sslyze checks it needs three things a default Python context
does not give: no CBC suites, no TLS 1.0/1.1, and key-exchange groups limited to X25519,
P-256 and P-384 (OpenSSL's default list also offers X448, P-521 and finite-field groups).
"""

from __future__ import annotations

import _ssl
import ctypes
import logging
import ssl
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography import x509

from chatsecure.config import TlsSettings
from chatsecure.tls_certs import fingerprint

log = logging.getLogger(__name__)

INTERMEDIATE = "intermediate"
MODERN = "modern"

# Mozilla intermediate, TLS 1.2 suites (https://wiki.mozilla.org/Security/Server_Side_TLS).
# The DHE suites stay in the list as Mozilla has it, but are only usable with DH
# parameters, which we do not load: every client of ours speaks ECDHE, and an unused
# suite is still compliant. TLS 1.3 suites are OpenSSL's defaults, which match Mozilla's.
INTERMEDIATE_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    )
)
GROUPS = b"X25519:P-256:P-384"
FALLBACK_CURVE = "prime256v1"

# OpenSSL's control code behind SSL_CTX_set1_groups_list(), a macro over SSL_CTX_ctrl()
# with no symbol of its own to call.
_SSL_CTRL_SET_GROUPS_LIST = 92

# SSL_CTX_ctrl(command, larg, parg) bound to one context (see _native_ctrl).
_Ctrl = Callable[[int, int, bytes | None], int]


class TlsSetupError(Exception):
    """The certificate or key cannot be used; the message tells the admin what to do."""


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """A server context for the configured profile, with the certificate and key loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls.profile == MODERN:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    else:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(INTERMEDIATE_CIPHERS)
    # Every allowed suite is strong, so Mozilla lets the client pick (it knows whether it
    # has AES hardware); Python turns server preference on by default.
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # No compression (CRIME), no renegotiation (a client-driven CPU drain), no session
    # tickets: resumption buys us little on long-lived connections and costs memory.
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_TICKET
    context.num_tickets = 0
    _limit_groups(context)
    _load_certificate(context, tls.cert_file, tls.key_file)
    return context


def _load_certificate(context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    hint = "run `chatsecure-admin gencert` to create them, or fix [tls] in the configuration"
    for label, path in (("certificate", cert_file), ("private key", key_file)):
        if not path.is_file():
            raise TlsSetupError(f"TLS {label} {path} not found: {hint}")
    try:
        context.load_cert_chain(cert_file, key_file)
    except PermissionError as exc:
        raise TlsSetupError(
            f"TLS certificate or key not readable ({exc.filename}): {hint}"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsSetupError(
            f"TLS certificate {cert_file} or key {key_file} unusable ({exc}): {hint}"
        ) from None


def _limit_groups(context: ssl.SSLContext) -> None:
    """Offer only X25519, P-256 and P-384 for key exchange.

    Python 3.11 has only ``set_ecdh_curve``, which under OpenSSL 3 sets a single group,
    so we call ``SSL_CTX_set1_groups_list`` through ``_native_ctrl``. If that is not
    possible we fall back to P-256 alone, which is compliant but narrower.
    """
    ctrl = _native_ctrl(context)
    if ctrl is not None and ctrl(_SSL_CTRL_SET_GROUPS_LIST, 0, GROUPS) == 1:
        return
    log.warning(
        "cannot set TLS key-exchange groups to %s with this Python/OpenSSL; offering %s only",
        GROUPS.decode(),
        FALLBACK_CURVE,
    )
    context.set_ecdh_curve(FALLBACK_CURVE)


def _native_ctrl(context: ssl.SSLContext) -> _Ctrl | None:
    """``SSL_CTX_ctrl`` bound to the ``SSL_CTX *`` that ``context`` wraps, or None.

    The ssl module of Python 3.11 does not expose the groups list, so we reach the C
    function through the very OpenSSL that ``_ssl`` is linked against.
    Every assumption is checked first; any doubt returns None and the caller falls back.
    """
    if sys.implementation.name != "cpython":
        return None
    try:
        libssl = ctypes.CDLL(_ssl.__file__)
        ctrl = libssl.SSL_CTX_ctrl
        get_options = libssl.SSL_CTX_get_options
    except (OSError, AttributeError):  # e.g. OpenSSL linked statically, symbols hidden
        return None
    ctrl.restype = ctypes.c_long
    ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    get_options.restype = ctypes.c_uint64
    get_options.argtypes = [ctypes.c_void_p]
    # CPython's PySSLContext is ``PyObject_HEAD`` (a refcount and a type pointer) then
    # ``SSL_CTX *ctx``; this has held since the ssl module began and still does in 3.13.
    head = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)
    ssl_ctx = ctypes.c_void_p.from_address(id(context) + head).value
    # Check we really hold this context's SSL_CTX: its options must read back the same.
    if not ssl_ctx or get_options(ssl_ctx) != int(context.options):
        return None

    def call(command: int, larg: int, parg: bytes | None) -> int:
        return int(ctrl(ssl_ctx, command, larg, parg))

    return call


def tls_versions(profile: str) -> str:
    """The protocol versions a profile accepts, for the start-up banner."""
    return "TLS 1.3" if profile == MODERN else "TLS 1.2, TLS 1.3"


def certificate_fingerprint(cert_file: Path) -> str:
    """SHA-256 of the first (leaf) certificate in ``cert_file``, as colon-separated hex.

    Users compare this with what their client shows to check they reached our server.
    """
    return fingerprint(_leaf(cert_file))


def certificate_not_after(cert_file: Path) -> datetime:
    """When the leaf certificate in ``cert_file`` expires (UTC)."""
    return _leaf(cert_file).not_valid_after_utc


def _leaf(cert_file: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsSetupError(f"cannot read TLS certificate {cert_file}: {exc}") from None
