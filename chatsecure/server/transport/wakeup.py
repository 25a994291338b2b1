"""How another thread wakes a thread that waits in a selector: a byte on a socketpair.

The reader and the writer each wait in a selector of their own, and each is woken this
way when there is news for it (a connection to watch, a queue to send).
"""

from __future__ import annotations

import contextlib
import selectors
import socket


class Wakeup:
    """A socketpair whose reading end ``selector`` watches, with ``None`` as its data.

    ``wake`` and ``close`` are called under the owner's lock, so no wake-up reaches a
    closed socket.
    """

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        selector.register(self._r, selectors.EVENT_READ, None)
        self._closed = False

    def wake(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already
            self._w.send(b"\0")

    def drain(self) -> None:
        """Take every pending wake-up (the selector's thread, when it saw one)."""
        try:
            while self._r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        self._closed = True
        self._r.close()
        self._w.close()
