"""The one writer thread: writes to every connection's non-blocking socket, via a selector.

A thread per connection for writing collapsed under broadcast fan-out (a wake-up per
recipient per message). Here a link's ``send`` only appends to a queue and, if the
connection was idle, puts it on the ready list; the writer wakes (one byte on a
socketpair, written only when the ready list goes from empty to non-empty), encrypts each
ready connection's whole queue in one TLS write and sends what the socket takes. What
does not fit waits for ``EVENT_WRITE``, and meanwhile new frames coalesce as plaintext.

The selector watches the connection's one fd, the same the reader reads from (see
``connection``), so it is unregistered before ``Connection.release`` closes it: a stale
registration would otherwise outlive the number, which the next ``accept`` reuses.
"""

from __future__ import annotations

import logging
import selectors
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import cast

from chatsecure.server.link import Broadcast, Fanout, Link
from chatsecure.server.transport.connection import Connection, Phase
from chatsecure.server.transport.wakeup import Wakeup

log = logging.getLogger(__name__)


class Writer:
    """Owns the selector, the ready list and every attached connection's write side."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wakeup = Wakeup(self._selector)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when _live empties
        self._ready: list[Connection] = []
        self._live: set[Connection] = set()
        self._stopping = False
        self._hurry = False  # set once; read unlocked by the writer thread
        # Writer thread only.
        self._registered: set[Connection] = set()
        self._timed: set[Connection] = set()
        self._thread = threading.Thread(target=self._run, name="chatsecure-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def attach(self, conn: Connection) -> bool:
        """Take over ``conn``'s write side and, at the end, its socket; False once stopping.

        Refused once ``stop`` began, since the thread may already have ended and would
        never release the connection.
        """
        with self._lock:
            if self._stopping:
                return False
            self._live.add(conn)
            return True

    def schedule(self, conn: Connection) -> None:
        """Ask the writer to look at ``conn`` soon. Any thread; cheap."""
        self._make_ready([conn])

    def broadcaster(self, links: Sequence[Link]) -> Broadcast:
        """Append a broadcast to each connection's queue, then put them all on the ready
        list in one step: the writer wakes once, not once per connection."""
        conns = cast(list[Connection], list(links))  # the links this writer carries
        fanout = Fanout(conns, [conn.enqueue for conn in conns])

        def broadcast(data: bytes, left_out: Collection[Link]) -> None:
            fanout(data, left_out)
            self._make_ready(conns)

        return broadcast

    def _make_ready(self, conns: list[Connection]) -> None:
        """Put ``conns`` on the ready list; wake the writer if it was empty."""
        with self._lock:
            wake = not self._ready
            self._ready += conns
            if wake:
                self._wakeup.wake()

    def live_count(self) -> int:
        with self._lock:
            return len(self._live)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every attached connection has finished closing; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._live, timeout)

    def hurry(self) -> None:
        """The server is stopping: cut each connection as soon as its data is sent.

        Normally we wait (``LINGER``) for the peer to close first; at shutdown that wait
        buys little, since our FIN already follows the last frame.
        """
        with self._lock:
            self._hurry = True
            live = list(self._live)
        for conn in live:
            self.schedule(conn)

    def stop(self, timeout: float) -> None:
        """Cut every remaining connection, then end the thread (bounded by ``timeout``)."""
        with self._lock:
            self._stopping = True
            remaining = list(self._live)
        for conn in remaining:
            conn.abort()
        with self._lock:
            self._wakeup.wake()
        if self._thread.ident is None:  # never started
            self._selector.close()
        else:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("writer: %d connections did not finish closing", self.live_count())
                return
        with self._lock:  # under the lock: no schedule() can be writing to them
            self._wakeup.close()

    # --- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                events = self._selector.select(self._timeout())
                now = time.monotonic()
                for key, _mask in events:
                    if key.data is None:
                        self._wakeup.drain()
                    else:
                        self._step(key.data, key.data.service, now)
                with self._lock:  # after draining the wake-ups, so none is lost
                    ready, self._ready = self._ready, []
                    stopping = self._stopping
                # News; the selector says which sockets take more. A broadcast puts a
                # connection here again even when it already is.
                for conn in dict.fromkeys(ready):
                    self._step(conn, conn.look, now)
                for conn in self._expired(now):
                    self._step(conn, conn.expire, now)
                if stopping and not self._live_snapshot():
                    return
        finally:
            self._selector.close()

    def _live_snapshot(self) -> bool:
        with self._lock:
            return bool(self._live)

    def _expired(self, now: float) -> list[Connection]:
        return [c for c in self._timed if c.deadline is not None and c.deadline <= now]

    def _timeout(self) -> float | None:
        deadlines = [c.deadline for c in self._timed if c.deadline is not None]
        if not deadlines:
            return None
        return max(min(deadlines) - time.monotonic(), 0.0)

    def _step(self, conn: Connection, step: Callable[[float], bool | None], now: float) -> None:
        """Run one step of ``conn``; a fault in one connection never stops the writer.

        A step that returns True (``Connection.look``) left the connection settled, as
        it found it: nothing here needs updating.
        """
        try:
            if step(now):
                return
            if self._hurry and conn.phase is Phase.LINGER:
                conn.expire(now)
            self._after(conn)
        except Exception:
            log.exception("%s: writer error; closing", conn.label)
            conn.abort()

    def _after(self, conn: Connection) -> None:
        """Bring the selector, the deadline set and the live set in line with ``conn``."""
        want = conn.wants_write
        if want and conn not in self._registered:
            self._selector.register(conn.fd, selectors.EVENT_WRITE, conn)
            self._registered.add(conn)
        elif not want and conn in self._registered:
            self._selector.unregister(conn.fd)
            self._registered.discard(conn)
        if conn.deadline is None:
            self._timed.discard(conn)
        else:
            self._timed.add(conn)
        if conn.phase is Phase.DONE:
            conn.release()  # unregistered above, and the reader is done: close the fd
            with self._lock:
                self._live.discard(conn)
                if not self._live:
                    self._idle.notify_all()
