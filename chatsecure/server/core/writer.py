"""The single message writer: commit what is queued in one transaction, then deliver.

One thread does both, holding the service's sequencer lock, so:
- a message is committed before its ``ok`` and before anyone receives it;
- ids are assigned in commit order, and deliveries leave in id order, so every session
  sees a room's messages in strictly increasing id order however many users send;
- many messages share one transaction (SQLite manages ~30x more rows per second
  that way than with one transaction per message).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple

from chatsecure.server.core.results import Label
from chatsecure.server.core.session import Session
from chatsecure.storage.store import MAX_BATCH, NewMessage, Store, StoredMessage

log = logging.getLogger(__name__)


class Submission(NamedTuple):
    """A message waiting to be stored, and whoever must hear how it went."""

    message: NewMessage
    sender: Session
    label: Label
    recipient_id: int | None = None
    settle: Callable[[bool], None] | None = None  # told whether it was stored


Delivered = Callable[[Sequence[tuple[Submission, StoredMessage]]], None]
Failed = Callable[[Sequence[Submission]], None]


class MessageWriter:
    def __init__(
        self,
        store: Store,
        sequencer: threading.Lock,
        delivered: Delivered,
        failed: Failed,
    ) -> None:
        self._store = store
        self._sequencer = sequencer
        self._delivered = delivered
        self._failed = failed
        self._queue: queue.SimpleQueue[Submission | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="message-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, submission: Submission) -> None:
        self._queue.put(submission)

    def backlog(self) -> int:
        """Submitted and not yet taken into a batch (approximate, as queue sizes are)."""
        return self._queue.qsize()

    def stop(self, timeout: float = 10.0) -> None:
        """Store and deliver everything already submitted, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        waiting: deque[Submission] = deque()  # taken off the queue, not yet committed
        stopping = False
        while waiting or not stopping:
            if not waiting:
                first = self._queue.get()
                if first is None:
                    break
                waiting.append(first)
            while len(waiting) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                waiting.append(item)
            # A batch the store writes in one statement: the rest waits for the next
            # round, which starts at once and takes whatever arrived meanwhile too.
            size = self._store.one_statement_batch(len(waiting))
            self._commit([waiting.popleft() for _ in range(size)])

    def _commit(self, batch: list[Submission]) -> None:
        with self._sequencer:
            try:
                stored = self._store.insert_messages([s.message for s in batch])
            except Exception:
                delivered, failed = self._salvage(batch)
                if failed:
                    log.error(
                        "could not store %d message(s) of a batch of %d",
                        len(failed),
                        len(batch),
                        exc_info=True,
                    )
                else:
                    log.warning("a batch of %d failed, its halves were stored", len(batch))
                self._delivered(delivered)
                self._failed(failed)
                return
            self._delivered(list(zip(batch, stored, strict=True)))

    def _salvage(
        self, batch: list[Submission]
    ) -> tuple[list[tuple[Submission, StoredMessage]], list[Submission]]:
        """Store what can be stored of a batch that just failed: each half, then theirs.

        One row that cannot be stored (say, its sender's account was deleted a moment
        ago) then refuses only itself, at the cost of about 2·log2(n) statements; when
        nothing can be stored (a full disk) it costs 2n-1 quick failures. Halves of a
        power-of-two batch are one statement each, and the first half's ids come first.
        """
        if len(batch) == 1:
            return [], batch
        half = len(batch) // 2
        delivered: list[tuple[Submission, StoredMessage]] = []
        failed: list[Submission] = []
        for part in (batch[:half], batch[half:]):
            try:
                stored = self._store.insert_messages([s.message for s in part])
            except Exception:
                more_delivered, more_failed = self._salvage(part)
                delivered += more_delivered
                failed += more_failed
            else:
                delivered += zip(part, stored, strict=True)
        return delivered, failed
