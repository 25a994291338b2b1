"""The one reader thread: reads every connection's socket, via a selector, once its
handshake is done.

A thread per connection for reading made busy clients queue for the GIL, a wake-up and a
hand-off for every read. Here one thread waits on every socket, decrypts what arrives
and feeds the session, which handles at once what never waits (a message to a room, a
ping) and sets anything else aside for its connection's own thread (``Link.aside``).
Until that has run the connection is not read, so its requests stay in order and what it
sends meanwhile waits in the kernel, not in our memory.

The selector watches the connection's one fd (see ``connection``). It is unregistered
before the connection's thread hears that reading stopped, and only that thread, after
it has heard, lets the writer close the fd: so no registration outlives the number.
"""

from __future__ import annotations

import logging
import selectors
import threading

from chatsecure.server.transport.connection import Connection, Reading
from chatsecure.server.transport.wakeup import Wakeup

log = logging.getLogger(__name__)


class Reader:
    """Owns the selector every attached connection is read through, between set-asides."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wakeup = Wakeup(self._selector)
        self._lock = threading.Lock()
        self._arriving: list[Connection] = []  # to watch from the next pass on
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="chatsecure-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def watch(self, conn: Connection) -> bool:
        """Read ``conn`` (again, once its set-aside work has run); False once stopping.

        Any thread; the reader thread registers it at its next pass.
        """
        with self._lock:
            if self._stopping:
                return False
            wake = not self._arriving
            self._arriving.append(conn)
            if wake:
                self._wakeup.wake()
        return True

    def stop(self, timeout: float) -> None:
        """Stop reading: every connection still read hears that reading is over."""
        with self._lock:
            self._stopping = True
            self._wakeup.wake()
        if self._thread.ident is None:  # never started
            self._end_all()
        else:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("reader: did not stop in %g s", timeout)
                return
        with self._lock:
            self._wakeup.close()

    # --- the reader thread ------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        try:
            while not stopping:
                woken = False
                for key, _mask in self._selector.select():
                    if key.data is None:
                        self._wakeup.drain()
                        woken = True
                    else:
                        self._read(key.data)
                if not woken:  # every arrival, and the stop, comes with a wake-up
                    continue
                with self._lock:  # after draining the wake-ups, so none is lost
                    arriving, self._arriving = self._arriving, []
                    stopping = self._stopping
                for conn in arriving:
                    self._selector.register(conn.fd, selectors.EVENT_READ, conn)
        finally:
            self._end_all()

    def _end_all(self) -> None:
        with self._lock:
            arriving, self._arriving = self._arriving, []
        watched = [key.data for key in self._selector.get_map().values() if key.data is not None]
        for conn in watched:
            self._selector.unregister(conn.fd)
        for conn in watched + arriving:
            conn.reading_stopped(Reading.OVER)
        self._selector.close()

    def _read(self, conn: Connection) -> None:
        """Read ``conn`` once; a fault in one connection never stops the reader."""
        try:
            reading = conn.read()
        except Exception:
            log.exception("%s: unexpected error; closing", conn.label)
            conn.abort()
            reading = Reading.OVER
        if reading is not Reading.ON:
            self._selector.unregister(conn.fd)
            conn.reading_stopped(reading)
