"""Sockets, TLS and threads: the thin shell that carries a wire adapter's bytes.

``Listener`` accepts clients and gives each a thread for its handshake and slow work;
one ``Reader`` thread reads and one ``Writer`` thread sends for all of them;
``tls.server_context`` builds the TLS context.
"""

from chatsecure.server.transport.addresses import format_address
from chatsecure.server.transport.listener import Listener
from chatsecure.server.transport.tls import (
    TlsSetupError,
    certificate_fingerprint,
    certificate_not_after,
    server_context,
    tls_versions,
)

__all__ = [
    "Listener",
    "TlsSetupError",
    "certificate_fingerprint",
    "certificate_not_after",
    "format_address",
    "server_context",
    "tls_versions",
]
