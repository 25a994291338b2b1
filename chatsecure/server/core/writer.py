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
                log.exception("could not store %d message(s)", len(batch))
                self._failed(batch)
                return
            self._delivered(list(zip(batch, stored, strict=True)))
