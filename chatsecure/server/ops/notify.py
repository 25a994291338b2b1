"""systemd's readiness protocol (``Type=notify``): a datagram to ``$NOTIFY_SOCKET``.

A few lines of what ``sd_notify(3)`` does, so no dependency: the socket is a unix datagram
socket, named by a path or, with a leading ``@``, in the abstract namespace. Without the
variable (not started by systemd) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"


def notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, ...) to the service manager; whether it was sent."""
    address = os.environ.get(NOTIFY_SOCKET)
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode())
    except OSError as exc:
        log.warning("cannot notify the service manager at %s: %s", address.lstrip("\0"), exc)
        return False
    return True


def ready() -> None:
    notify("READY=1", "STATUS=serving")


def reloading() -> None:
    """Tell systemd a reload has begun; it waits for the next ``ready``."""
    # Type=notify-reload (systemd 253) wants the time of the request with it.
    notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")


def stopping() -> None:
    notify("STOPPING=1", "STATUS=stopping")
