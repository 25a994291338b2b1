"""One client connection: TLS in memory, a thread of its own, and an outbox the writer drains.

TLS runs on an ``ssl.SSLObject`` over two ``MemoryBIO``\\ s, so no socket call ever happens
inside OpenSSL and the one ``SSLObject`` is only touched under ``_tls_lock`` (OpenSSL
forbids reading and writing one connection from two threads at once).

Four parties touch a connection, each through its own door:

* its **own thread** (``run``): the handshake, then the work its session sets aside
  (``aside``), one piece at a time while the reader does not read it;
* the shared **reader thread** (``read``): ``recv`` → decrypt → ``session.receive`` on
  the accepted socket ``_raw``, whenever the reader's selector says it is readable;
* its **wire adapter** (any thread): ``send`` and ``close``, the ``Link`` protocol; these
  only put frames in the ``_inbox`` deque, set flags and ask the writer to look;
* the shared **writer thread** (``look``, ``service``, ``expire``, ``release``): takes the inbox,
  bounds it, encrypts it in one TLS write, sends it on the same socket, runs the close
  sequence and, last, closes the socket. Only the writer touches ``_pending`` and ``_out``.

``send`` runs once per recipient of every broadcast, so it takes no lock: a deque's
``append`` and ``popleft`` are atomic, and the writer, not the sender, counts the bytes
and cuts a client whose queue is past its bound. What it holds in between is frames that
every recipient shares (a broadcast is encoded once) and the writer takes at its next
pass. ``close`` puts a mark in the inbox, so what a racing ``send`` appends after it is
dropped, never delivered after the goodbye.

One socket and one fd per connection, used by three threads. During the handshake only
its own thread uses it, with timeouts. Then it becomes non-blocking (timeout 0) for good, since
CPython's socket methods wait for readiness *before* the call whenever the socket has a
positive timeout (``sock_call_ex`` in ``socketmodule.c``): a ``send`` from the writer
could wait on a full socket and stall every other connection. With timeout 0, ``send``
is a bare ``send(2)``: it takes what fits or raises ``BlockingIOError``, and a vanished
peer is ``EPIPE``/``ECONNRESET`` (CPython ignores SIGPIPE). The reader and the writer
each wait in a selector of their own, and an idle connection holds no receive buffer.
Two threads may call the one socket object at once: its ``send`` and ``recv`` only read
its fd and timeout, which no longer change. Both
go through the object, never a saved fd number: once closed its ``fileno()`` is -1, so a
stray call fails with EBADF instead of reaching whoever has the number now.

A closed fd number is reused by the next ``accept``, so a late write or shutdown on it
would reach another client. The fd is therefore closed exactly once, by whoever uses it
last, and every other use is ordered before the close:

* never attached to the writer (failed handshake, or the writer is stopping): its own
  thread closes it as it exits, and the writer never knew it (if that thread could not
  even start, the listener closes it);
* attached: the writer closes it in ``release``, which happens only in ``Phase.DONE``;
  that phase needs ``_reader_done``, set by the connection's own thread once the reader
  has unregistered the fd and stopped using it (``reading_stopped``), and it is final,
  so the writer's own writes all came before;
* any other thread (``abort``, or ``close`` before attaching) only shuts the fd down, in
  ``_shutdown_raw``, under ``_lock`` and only while ``_raw_closed`` is false; both
  closers set that flag and close under ``_lock``.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from chatsecure.server.link import Broadcast, Link, SessionPort
from chatsecure.server.transport.addresses import format_address
from chatsecure.server.transport.budget import FAIR_SHARE, QueueBudget

log = logging.getLogger(__name__)

# One TLS record. Held only while data is read: the reader waits without it (see above).
RECV_BYTES = 16384
# How long a connection closed by its adapter may take to deliver what is queued.
CLOSE_GRACE = 2.0
# Plaintext encrypted at a time: what the TLS buffer and the ciphertext may hold.
ENCRYPT_BATCH = 64 * 1024
# How long a slow consumer gets to take its farewell before it is cut off.
SLOW_CONSUMER_GRACE = 1.0
# After our close_notify and FIN, how long we wait for the peer to close its side
# (closing first with unread input would send a RST that can destroy our last frames).
LINGER = 2.0

OpenSession = Callable[["Connection"], SessionPort | None]


class Reading(enum.Enum):
    """What the reader does with a connection after a read."""

    ON = "on"  # read it whenever it is readable
    ASIDE = "aside"  # not until its own thread has run the work its session set aside
    OVER = "over"  # never again: EOF, an error, or the reader stopping


class ReaderPort(Protocol):
    """What a connection asks of the reader thread that reads it (``reader.Reader``)."""

    def watch(self, conn: Connection) -> bool:
        """Read ``conn`` whenever it is readable; False when the reader is stopping."""


class _Mark(bytes):
    """An empty frame told apart by identity: where ``close`` ended the inbox."""


CLOSE_MARK = _Mark()


class WriterPort(Protocol):
    """What a connection asks of the writer thread that sends for it (``writer.Writer``)."""

    def attach(self, conn: Connection) -> bool:
        """Take ``conn`` on; False when the writer is stopping."""

    def schedule(self, conn: Connection) -> None:
        """Look at ``conn`` soon: it has data, or its close is due."""

    def broadcaster(self, links: Sequence[Link]) -> Broadcast:
        """Queue a broadcast on ``links`` (connections it sends for), then look at them."""


class Phase(enum.Enum):
    """Where the writer is in this connection's life."""

    OPEN = "open"  # delivering frames
    CLOSING = "closing"  # delivering what is left, until done or the deadline
    LINGER = "linger"  # close_notify and FIN sent; waiting for the reader to see EOF
    ABORTED = "aborted"  # shut down hard; waiting for the reader to see EOF
    DONE = "done"  # final: the reader is done; the writer closes the socket and forgets it


class Connection(Link):
    """A TLS connection to one client; its wire adapter sees it only as a ``Link``."""

    def __init__(
        self,
        sock: socket.socket,
        peer: tuple[str, int],
        context: ssl.SSLContext,
        writer: WriterPort,
        reader: ReaderPort,
        *,
        handshake_timeout: float,
        max_unsent_bytes: int,
        budget: QueueBudget,
        drain_timeout: float,
        slow_consumer_farewell: bytes,
        open_session: OpenSession,
        on_login: Callable[[Connection], None],
        on_exit: Callable[[Connection], None],
    ) -> None:
        self.address, self.port = peer
        self._raw = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._tls_lock = threading.Lock()
        self._writer = writer
        self._handshake_timeout = handshake_timeout
        self._max_unsent = max_unsent_bytes
        self._free_share = min(FAIR_SHARE, max_unsent_bytes)  # held without asking the budget
        self._budget = budget
        self._drain_timeout = drain_timeout
        self._farewell = slow_consumer_farewell
        self._open_session = open_session
        self._on_login = on_login
        self._on_exit = on_exit
        self._reader = reader
        self._session: SessionPort | None = None  # once opened
        self._waiting_login = True
        # Appended to by the session, on the reader thread or this one; run by this one.
        self._asides: collections.deque[Callable[[], None]] = collections.deque()
        # From the reader, each time it stops reading: True when for work set aside.
        self._reading_paused: queue.SimpleQueue[bool] = queue.SimpleQueue()

        # Appended to by send (any thread), taken by the writer; both atomic (see above).
        self._inbox: collections.deque[bytes] = collections.deque()
        # Read by send without the lock; a stale value costs one frame before the mark.
        self._accepting = False  # whether send() queues; false before the handshake and after close
        self._scheduled = False  # already in the writer's ready list; cleared before it looks

        # Guarded by _lock; written by close/abort (any thread), its own thread and the writer.
        self._lock = threading.Lock()
        self._close_grace: float | None = None  # set once close is asked for
        self._abort_requested = False
        self._reader_done = False
        self._raw_closed = False  # set by whichever of its own thread and the writer closes it
        self.attached = False  # handed to the writer (after the handshake)
        self.dropped_as_slow = False  # its queue overflowed: it got the farewell

        # Writer thread only; unsent_bytes() reads the counts unlocked.
        self._inbox_open = True  # false once the close mark (or an abort) ended it
        self._pending: list[bytes] = []  # taken from the inbox, counted, not yet encrypted
        self._pending_bytes = 0
        self._charged = 0  # bytes this connection has charged to the budget
        self._out = bytearray()  # ciphertext; the first _sent bytes are already sent
        self._sent = 0
        self._backlog_bytes = 0
        self.phase = Phase.OPEN
        self.deadline: float | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.label} {self.phase.value}>"

    @property
    def label(self) -> str:
        """``address:port`` for logs."""
        return format_address(self.address, self.port)

    # --- Link: called by the wire adapter, from any thread ---------------------------

    def send(self, data: bytes) -> None:
        """Queue ``data``; the writer bounds the queue when it takes it (``_take``).

        The hot path of every broadcast, once per recipient per message: no lock, no
        counting. The flag saves a wake-up per frame; two senders that both see it clear
        only schedule the connection twice, and the writer clears it before it takes
        the inbox, so a frame appended before the flag was read is always taken.
        """
        if self._accepting:
            self._inbox.append(data)
            if not self._scheduled:
                self._scheduled = True
                self._writer.schedule(self)

    @property
    def carrier(self) -> WriterPort:
        return self._writer

    @property
    def enqueue(self) -> Callable[[bytes], None]:
        """``send`` for a broadcast, which wakes the writer once for all its connections.

        It appends even after ``close``: the writer drops what follows the mark, and a
        finished connection's queue at its next look.
        """
        return self._inbox.append

    def aside(self, work: Callable[[], None]) -> None:
        """Run ``work`` on this connection's own thread; the reader stops reading it
        until then (it looks at ``_asides`` after each ``receive``)."""
        self._asides.append(work)

    def unsent_bytes(self) -> int:
        # Unlocked: a stale sum only delays or hastens a bulk sender's next piece.
        queued = sum(map(len, tuple(self._inbox)))  # tuple(): one step under the GIL
        return queued + self._pending_bytes + self._backlog_bytes

    def close(self) -> None:
        """Deliver what is queued (within ``CLOSE_GRACE``), then close. Idempotent."""
        with self._lock:
            if self._close_grace is not None:
                return
            self._end_inbox_locked(CLOSE_GRACE)
            attached = self.attached
        if attached:
            self._writer.schedule(self)
        else:
            self._shutdown_raw()

    def abort(self) -> None:
        """Drop everything and close now; wakes the reader. Any thread. Idempotent."""
        with self._lock:
            self._accepting = False
            self._abort_requested = True  # the writer drops what is queued
            attached = self.attached
        self._shutdown_raw()
        if attached:
            self._writer.schedule(self)

    def _end_inbox_locked(self, grace: float) -> None:
        """Accept no more frames: deliver those before the mark within ``grace``."""
        self._accepting = False
        self._close_grace = grace
        self._inbox.append(CLOSE_MARK)

    def _shutdown_raw(self) -> None:
        """Shut the socket both ways (the reader wakes with EOF); any thread, any time."""
        # Under _lock so neither closer can close the fd (and the number be reused by a
        # new connection) between our check and the syscall.
        with self._lock:
            if not self._raw_closed:
                with contextlib.suppress(OSError):  # already disconnected
                    self._raw.shutdown(socket.SHUT_RDWR)

    # --- its own thread ----------------------------------------------------------------

    def run(self) -> None:
        """Handshake, open a session, then run what it sets aside until reading is over."""
        session: SessionPort | None = None
        try:
            if not self._handshake() or not self._attach():
                return
            session = self._session = self._open_session(self)
            if session is None:  # the server is stopping
                self.abort()
                return
            # With TLS 1.3 a client may send its first request in the same segment as its
            # Finished message: the handshake then leaves it buffered, and no readiness
            # would ever tell the reader of it.
            plaintext, over = self._decrypt(b"")
            if plaintext:
                self._receive(session, plaintext)
            while not over:
                self._run_asides(session)
                over = not self._reader.watch(self) or not self._reading_paused.get()
            self._run_asides(session)  # what came with the last data
        except Exception:
            log.exception("%s: unexpected error; closing", self.label)
        finally:
            self._reader_exit(session)

    def _run_asides(self, session: SessionPort) -> None:
        while self._asides:
            self._asides.popleft()()
            self._look_for_login(session)

    def _receive(self, session: SessionPort, plaintext: bytes) -> None:
        session.receive(plaintext)
        self._look_for_login(session)

    def _look_for_login(self, session: SessionPort) -> None:
        if self._waiting_login and session.logged_in:
            self._waiting_login = False
            self._on_login(self)

    def _handshake(self) -> bool:
        """Run the TLS handshake on this thread, bounded by the handshake timeout."""
        deadline = time.monotonic() + self._handshake_timeout
        try:
            while True:
                try:
                    self._tls.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                self._send_during_handshake(deadline)
                if done:
                    break
                self._raw.settimeout(max(deadline - time.monotonic(), 0.001))
                data = self._raw.recv(RECV_BYTES)
                if not data:
                    log.debug("%s: closed during TLS handshake", self.label)
                    return False
                self._incoming.write(data)
        except ssl.SSLError as exc:
            self._send_alert(deadline)
            log.info("%s: TLS handshake failed: %s", self.label, exc.reason or exc)
            return False
        except TimeoutError:
            log.info("%s: TLS handshake timed out", self.label)
            return False
        except OSError as exc:
            log.debug("%s: connection error during TLS handshake: %s", self.label, exc)
            return False
        log.info("%s: connected (%s, %s)", self.label, self._tls.version(), self._cipher_name())
        return True

    def _send_during_handshake(self, deadline: float) -> None:
        data = self._outgoing.read()
        if data:
            self._raw.settimeout(max(deadline - time.monotonic(), 0.001))
            self._raw.sendall(data)

    def _send_alert(self, deadline: float) -> None:
        """Best effort: tell the client why (e.g. no shared cipher) instead of just closing."""
        with contextlib.suppress(OSError):
            self._send_during_handshake(min(deadline, time.monotonic() + 0.5))

    def _cipher_name(self) -> str:
        cipher = self._tls.cipher()
        return cipher[0] if cipher else "?"

    def _attach(self) -> bool:
        """Hand the connection to the writer; from now on its own thread never sends.

        False when the writer is stopping: this thread then keeps the socket and closes it.
        """
        self._raw.setblocking(False)  # for good: the writer must never wait (see above)
        if not self._writer.attach(self):
            log.debug("%s: the server is stopping; closing", self.label)
            return False
        with self._lock:
            self.attached = True
            self._accepting = self._close_grace is None and not self._abort_requested
        return True

    # --- the reader thread ------------------------------------------------------------

    def read(self) -> Reading:
        """The socket is readable: feed the session what came, and say what next."""
        try:
            data = self._raw.recv(RECV_BYTES)
        except BlockingIOError:
            return Reading.ON
        except OSError:
            return Reading.OVER
        if not data:
            return Reading.OVER
        if self._close_grace is not None or self._abort_requested:
            return Reading.ON  # closing: only wait for the peer's EOF, ignore what it says
        plaintext, eof = self._decrypt(data)
        if plaintext:
            session = self._session
            assert session is not None  # watched only once it has one
            self._receive(session, plaintext)
        if eof:
            return Reading.OVER
        return Reading.ASIDE if self._asides else Reading.ON

    def reading_stopped(self, reading: Reading) -> None:
        """The reader unregistered the socket: wake this connection's own thread."""
        self._reading_paused.put(reading is Reading.ASIDE)

    def _decrypt(self, data: bytes) -> tuple[bytes, bool]:
        """Plaintext in ``data``, and whether the peer sent close_notify."""
        chunks: list[bytes] = []
        eof = False
        with self._tls_lock:
            self._incoming.write(data)
            while True:
                try:
                    chunk = self._tls.read(RECV_BYTES)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    eof = True
                    break
                except ssl.SSLError as exc:
                    log.info("%s: TLS error: %s", self.label, exc.reason or exc)
                    eof = True
                    break
                if not chunk:
                    eof = True
                    break
                chunks.append(chunk)
                # OpenSSL takes one record at a time from the BIO (Python never turns on
                # read-ahead), so with the BIO empty the next read could only fail:
                # stopping here saves a call that lets go of the GIL and an exception.
                if not self._incoming.pending:
                    break
            # Reading can produce records to send (e.g. a TLS 1.3 KeyUpdate reply).
            reply_pending = self._outgoing.pending > 0
        if reply_pending:
            self._writer.schedule(self)
        return b"".join(chunks), eof

    def _reader_exit(self, session: SessionPort | None) -> None:
        with self._lock:
            self._reader_done = True
            attached = self.attached
            if not attached:  # the writer never saw the fd: it is ours to close
                self._close_raw_locked()
            elif self._close_grace is None:
                # Still flush what is queued (a peer that half-closed still reads).
                self._end_inbox_locked(CLOSE_GRACE)
        if attached:
            self._writer.schedule(self)  # the writer finishes the close, closes the fd
        if session is not None:
            try:
                session.connection_lost()
            except Exception:
                log.exception("%s: error in connection_lost", self.label)
        if attached:
            log.info("%s: disconnected", self.label)
        self._on_exit(self)

    # --- the writer thread ------------------------------------------------------------

    @property
    def fd(self) -> int:
        """The socket's file descriptor, for the writer's selector; -1 once released."""
        return self._raw.fileno()

    @property
    def wants_write(self) -> bool:
        """Whether ciphertext is waiting for the socket to become writable."""
        return self._sent < len(self._out) and self.phase in (Phase.OPEN, Phase.CLOSING)

    def look(self, now: float) -> bool:
        """The writer has news for this connection (frames, a close): ``service`` it, the
        short way when it is settled (``_pass_through``). Its socket may be full; the
        selector says when it takes more.

        True when the connection was settled before and still is (``_settled``): then
        nothing the writer keeps about it (selector, deadlines, live set) has changed.
        """
        if self._settled() and not self._abort_requested and self._pass_through():
            return True
        self.service(now, writable=False)
        return False

    def service(self, now: float, *, writable: bool = True) -> None:
        """Take the inbox, encrypt the queue in one TLS write, send what the socket takes,
        advance closing. ``writable=False``: the socket may be full (see ``look``)."""
        if self.phase is Phase.DONE:
            self._inbox.clear()  # a broadcast's, after the end
            return
        if writable and self.wants_write:
            self._send_or_abort()
        self._scheduled = False  # before taking: see send
        with self._lock:
            close_grace = self._close_grace
            abort_requested = self._abort_requested
            reader_done = self._reader_done
        if abort_requested and self.phase in (Phase.OPEN, Phase.CLOSING, Phase.LINGER):
            self._abort()
        if self._inbox_open:
            self._take(self._from_inbox())
        elif self._inbox:
            self._inbox.clear()  # what racing senders put in after the end
        # While blocked, frames wait and coalesce.
        chunks = self._take_batch() if self._sent == len(self._out) else []
        queue_empty = not self._pending and not (self._inbox_open and close_grace is not None)
        if self.phase is Phase.OPEN and self._close_grace is not None:  # the farewell sets it
            self.phase = Phase.CLOSING
            self.deadline = now + self._close_grace
        if self.phase in (Phase.OPEN, Phase.CLOSING):
            self._encrypt_or_abort(chunks)
            self._send_or_abort()
        if self.phase is Phase.CLOSING and queue_empty and not self.wants_write:
            self._finish_tls(now)
        if self.phase in (Phase.LINGER, Phase.ABORTED) and reader_done:
            self.phase = Phase.DONE
            self.deadline = None
        held = self._recount()
        if self.phase is Phase.OPEN:
            self._watch_drain(now, held)
        if not queue_empty and not self.wants_write and self.phase in (Phase.OPEN, Phase.CLOSING):
            self._writer.schedule(self)  # the rest of the queue, after the others' turn

    def _settled(self) -> bool:
        """Open with nothing held: no ciphertext left, no queue, no charge, no deadline.

        The state almost every recipient of a broadcast is in, between two messages.
        """
        return (
            self.phase is Phase.OPEN
            and self._sent == len(self._out)
            and not self._pending
            and not self._charged
            and self.deadline is None
        )

    def _pass_through(self) -> bool:
        """The common case, news for a settled connection: encrypt what the inbox holds
        in one TLS write and send it. True if it ends settled; otherwise ``service`` goes
        on from where this left, with what was taken in ``_pending`` or ``_out``.

        It runs once per recipient of every message, so it is ``_take``,
        ``_take_batch``, ``_encrypt_or_abort`` and ``_send_or_abort`` folded into one
        for the case they all allow: no close, a batch within the free share (so no
        budget to charge), and a socket that takes it all.
        """
        self._scheduled = False  # before taking: see send
        taken = self._from_inbox()
        data = b"".join(taken)  # a single frame is returned as it is, not copied
        # Read after taking: close sets it before it appends the mark (see _take).
        if not data or self._close_grace is not None or len(data) > self._free_share:
            self._take(taken)
            return False
        ciphertext = self._encrypt(data)
        if ciphertext is None:
            return False
        sent = self._send(ciphertext)
        if sent == len(ciphertext):
            return True
        if sent is None:
            self._abort()
        else:
            self._out += memoryview(ciphertext)[sent:]
        return False

    def _from_inbox(self) -> list[bytes]:
        """What ``send`` has queued, popped frame by frame: a racing append is taken now
        or at the next look, never lost (as between a copy and a ``clear``)."""
        inbox = self._inbox
        return [inbox.popleft() for _ in range(len(inbox))]

    def _take(self, taken: list[bytes]) -> None:
        """Move ``taken`` (what ``send`` queued) to ``_pending``, up to the close mark;
        past this connection's bound, or its share of the server's, queue the farewell
        instead."""
        # Read after ``taken`` was popped: close sets it before it appends the mark, so
        # a mark among them is always seen here.
        if self._close_grace is not None:
            for index, frame in enumerate(taken):
                if frame is CLOSE_MARK:
                    del taken[index:]
                    self._inbox_open = False
                    self._inbox.clear()
                    break
        if not taken:
            return
        size = sum(map(len, taken))
        held = self._pending_bytes + len(self._out) - self._sent
        why = "" if held + size <= self._free_share else self._overflow(held, size)
        if why:
            log.warning("%s: too slow to read its frames (%s); disconnecting", self.label, why)
            self._give_up()
            return
        self._pending += taken
        self._pending_bytes += size

    def _overflow(self, held: int, size: int) -> str:
        """Why ``size`` more bytes may not be queued (empty if they may); if they may,
        charge the budget for all this connection will then hold."""
        if held + size > self._max_unsent:
            return "its queue is full"
        uncharged = held + size - self._charged
        if not self._budget.admits(held, uncharged):
            return "the server's queue budget is spent"
        self._charged = held + size
        self._budget.add(uncharged)
        return ""

    def _give_up(self) -> None:
        """Drop the frames not yet encrypted (ciphertext can't be), queue the farewell."""
        self._pending = [self._farewell]
        self._pending_bytes = len(self._farewell)
        self._inbox_open = False
        self._inbox.clear()
        self.dropped_as_slow = True
        with self._lock:
            self._accepting = False
            self._close_grace = SLOW_CONSUMER_GRACE

    def _take_batch(self) -> list[bytes]:
        """The queue's first ``ENCRYPT_BATCH`` bytes (at least one frame) to encrypt.

        Encrypting a whole queue at once would make OpenSSL's buffer and ``_out`` as
        big as the queue, for as long as the connection lives.
        """
        pending = self._pending
        taken = 0
        count = 0
        while count < len(pending) and (taken < ENCRYPT_BATCH or not count):
            taken += len(pending[count])
            count += 1
        chunks = pending[:count]
        del pending[:count]
        self._pending_bytes -= taken
        return chunks

    def _watch_drain(self, now: float, held: int) -> None:
        """Start the drain deadline when bytes are left over; end it once none are.

        Only an empty queue counts as drained, so a client that reads a little now and
        then, never catching up, is dropped as surely as one that never reads. (While
        the connection is open, this is the only deadline it has.)
        """
        if not held:
            self.deadline = None
        elif self.deadline is None:
            self.deadline = now + self._drain_timeout

    def _recount(self) -> int:
        """Charge the budget for what is held now, ciphertext included (0 once done)."""
        self._backlog_bytes = len(self._out) - self._sent
        held = 0 if self.phase is Phase.DONE else self._pending_bytes + self._backlog_bytes
        delta, self._charged = held - self._charged, held
        if delta:
            self._budget.add(delta)
        return held

    @property
    def holds_data(self) -> bool:
        """Whether anything queued for the client has yet to leave the process."""
        return self.wants_write or self._pending_bytes > 0 or bool(self._inbox)

    def expire(self, now: float) -> None:
        """The deadline passed: an open queue that never drained, or a close that lingered."""
        if self.phase is Phase.OPEN:
            log.warning(
                "%s: too slow to read its frames (its queue has not emptied for %g s); "
                "disconnecting",
                self.label,
                self._drain_timeout,
            )
            self._give_up()
        else:
            log.debug("%s: close deadline passed (%s)", self.label, self.phase.value)
            self._abort()
        self.service(now)

    def release(self) -> None:
        """Close the socket, in ``Phase.DONE``; the writer has unregistered it. Idempotent."""
        assert self.phase is Phase.DONE
        with self._lock:
            if not self._raw_closed:
                self._close_raw_locked()

    def _close_raw_locked(self) -> None:
        self._raw_closed = True
        self._raw.close()

    def _encrypt_or_abort(self, chunks: list[bytes]) -> None:
        """Encrypt ``chunks`` in one TLS write onto ``_out``."""
        ciphertext = self._encrypt(b"".join(chunks))
        if ciphertext is not None:
            self._out += ciphertext

    def _encrypt(self, data: bytes) -> bytes | None:
        """``data`` in TLS records, after any the TLS layer queued itself (a KeyUpdate
        reply); None if that failed, and the connection is aborted."""
        try:
            with self._tls_lock:
                if data:
                    self._tls.write(data)
                return self._outgoing.read()
        except (ssl.SSLError, ValueError) as exc:
            log.debug("%s: TLS write failed: %s", self.label, exc)
            self._abort()
            return None

    def _send_or_abort(self) -> None:
        """Send ciphertext until the socket is full; ``_out[_sent:]`` is what remains."""
        while self._sent < len(self._out):
            with memoryview(self._out) as view, view[self._sent :] as rest:
                sent = self._send(rest)
            if sent is None:
                self._abort()  # out of the view: it clears _out
            if not sent:  # the socket is full, or the connection failed
                return
            self._sent += sent
        # All sent: start the buffer afresh.
        self._out.clear()
        self._sent = 0

    def _send(self, data: bytes | memoryview) -> int | None:
        """``send(2)``: how much the socket took (0 when full); None if the connection
        failed, which the caller aborts."""
        try:
            return self._raw.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            log.debug("%s: send failed: %s", self.label, exc)
            return None

    def _finish_tls(self, now: float) -> None:
        """Queue close_notify and send FIN; the peer closes, the reader sees EOF."""
        with self._tls_lock:
            # SSLWantReadError only says the peer's close_notify has not come yet.
            with contextlib.suppress(ssl.SSLError):
                self._tls.unwrap()
            close_notify = self._outgoing.read()
        try:
            self._raw.send(close_notify)
            self._raw.shutdown(socket.SHUT_WR)
        except OSError:
            self._abort()
            return
        self.phase = Phase.LINGER
        self.deadline = now + LINGER

    def _abort(self) -> None:
        """Shut the socket both ways (the reader wakes with EOF) and drop what is unsent."""
        self._shutdown_raw()
        self._out.clear()
        self._sent = 0
        self.phase = Phase.ABORTED
        self.deadline = None
        self._accepting = False
        self._inbox_open = False
        self._inbox.clear()
        self._pending = []
        self._pending_bytes = 0
