"""File transfers, seen from the client: uploads in chunks under an ack window, and
downloads checked against the file's size and SHA-256 before they get their name.

The bookkeeping here knows nothing of the network or the window: the session asks an
``Upload`` for the chunks it may send now and tells it what the server acknowledged; it
hands a ``Download`` each piece of data as it arrives. The reads and writes are one chunk
at a time, so the window's thread never waits on more than a few tens of kilobytes; the
one long read, hashing a whole file before it is offered, runs on a thread of its own
(``start_hashing``) and reports on the session's queue.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import queue
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

from chatsecure.client.events import FileHashed, HashFailed, NetworkEvent
from chatsecure.protocol import FileInfo

# The contract lets a client keep this many chunks unacknowledged.
WINDOW = 8
# Restarts at the same byte before giving up: a server that keeps asking for the same
# bytes will not take them.
MAX_RESTARTS = 3
HASH_BLOCK = 1024 * 1024


class TransferError(Exception):
    """A transfer cannot go on; the message is for people."""


def human_size(size: int) -> str:
    """``size`` bytes the way people read them: 980 bytes, 12.3 KB, 4.0 MB."""
    if size < 1000:
        return f"{size} byte{'s' if size != 1 else ''}"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def hash_file(path: Path) -> tuple[int, str]:
    """The size and SHA-256 (hex) of the file at ``path``, read a block at a time."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def start_hashing(transfer: int, path: Path, events: queue.Queue[NetworkEvent]) -> None:
    """Hash ``path`` on a thread of its own; ``FileHashed`` or ``HashFailed`` follows."""

    def run() -> None:
        try:
            size, sha256 = hash_file(path)
        except OSError as exc:
            events.put(HashFailed(transfer, f"Cannot read {path}: {exc.strerror or exc}."))
            return
        events.put(FileHashed(transfer, size, sha256))

    threading.Thread(target=run, name="chatsecure-hash", daemon=True).start()


class Stage(enum.Enum):
    HASHING = "hashing"
    OFFERED = "offered"  # the offer is on its way; no slot yet
    SENDING = "sending"
    LOST = "lost"  # the connection dropped before the slot came: offer again


class Upload:
    """One file going up: which bytes were sent, and which the server has confirmed.

    ``generation`` changes on every restart (a ``bad_upload`` with ``received``, a
    reconnect): replies to chunks of an older generation are stale and only counted
    if they say the whole file arrived.
    """

    def __init__(
        self, transfer: int, path: Path, *, room: str | None = None, to: str | None = None
    ) -> None:
        self.transfer = transfer
        self.path = path
        self.name = path.name
        self.room, self.to = room, to  # where it goes: one of them
        self.stage = Stage.HASHING
        self.size = 0
        self.sha256 = ""
        self.token: str | None = None
        self.chunk_bytes = 0
        self.acked = 0  # bytes the server said it has
        self.next_offset = 0  # the first byte not yet sent
        self.in_flight = 0  # chunks of this generation not yet acknowledged
        self.generation = 0
        self._restarts: tuple[int, int] = (-1, 0)  # (at which byte, how often in a row)
        self.slot_may_be_stale = False  # a reconnect since the slot: the server may have dropped it
        self._file: BinaryIO | None = None

    def hashed(self, size: int, sha256: str) -> None:
        if size == 0:
            raise TransferError(f"{self.name} is empty; there is nothing to send.")
        self.size, self.sha256 = size, sha256
        self.stage = Stage.OFFERED

    def slot(self, token: str, chunk_bytes: int) -> None:
        """The server is ready: start (again) from the first byte."""
        if chunk_bytes <= 0:
            raise TransferError("The server offered an unusable chunk size.")
        self.token, self.chunk_bytes = token, chunk_bytes
        self.stage = Stage.SENDING
        self.slot_may_be_stale = False
        self.restart(0)

    def restart(self, received: int) -> None:
        """Send again from ``received``, the byte count the server reports."""
        if not 0 <= received < self.size:
            raise TransferError(f"The server cannot resume {self.name} at byte {received}.")
        at, times = self._restarts
        times = times + 1 if at == received else 1
        if times > MAX_RESTARTS:
            raise TransferError(f"The server keeps refusing {self.name} at byte {received}.")
        self._restarts = (received, times)
        self.generation += 1
        self.acked = self.next_offset = received
        self.in_flight = 0

    def chunks(self) -> list[tuple[int, bytes]]:
        """The chunks that may go now: (offset, data), keeping at most ``WINDOW`` unacknowledged."""
        ready: list[tuple[int, bytes]] = []
        while self.in_flight < WINDOW and self.next_offset < self.size:
            data = self._read(self.next_offset)
            ready.append((self.next_offset, data))
            self.next_offset += len(data)
            self.in_flight += 1
        return ready

    def acknowledged(self, generation: int, received: int | None, *, stored: bool = False) -> bool:
        """A chunk's ``ok`` (``stored``: it carries the message's id); ``True`` once the
        server has the whole file."""
        if stored or (received is not None and received >= self.size):
            self.acked = self.size
            return True
        if generation == self.generation:
            self.in_flight = max(0, self.in_flight - 1)
            if received is not None:
                self.acked = max(self.acked, received)
        return False

    def _read(self, offset: int) -> bytes:
        try:
            if self._file is None:
                self._file = self.path.open("rb")
            self._file.seek(offset)
            data = self._file.read(min(self.chunk_bytes, self.size - offset))
        except OSError as exc:
            raise TransferError(f"Cannot read {self.path}: {exc.strerror or exc}.") from None
        if not data:
            raise TransferError(f"{self.name} became shorter while it was being sent.")
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Download:
    """One file coming down into a temporary file beside ``target``, renamed once it checks out."""

    def __init__(self, transfer: int, info: FileInfo, target: Path) -> None:
        self.transfer = transfer
        self.file_id = info.id
        self.name = info.name
        self.size = info.size
        self.sha256 = info.sha256.lower()
        self.target = target
        self.done = 0
        self._digest = hashlib.sha256()
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".part"
            )
        except OSError as exc:
            raise TransferError(
                f"Cannot write to {target.parent}: {exc.strerror or exc}."
            ) from None
        self.temp = Path(temp)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")

    def append(self, offset: int, data: bytes) -> None:
        if offset != self.done:
            raise TransferError(f"{self.name}: the server sent byte {offset}, not {self.done}.")
        if self.done + len(data) > self.size:
            raise TransferError(f"{self.name}: the server sent more than {self.size} bytes.")
        assert self._file is not None
        try:
            self._file.write(data)
        except OSError as exc:
            raise TransferError(f"Cannot write {self.temp}: {exc.strerror or exc}.") from None
        self._digest.update(data)
        self.done += len(data)

    def finish(self) -> None:
        """Check what arrived, then give it its name (replacing what was there)."""
        assert self._file is not None
        try:
            self._file.close()
        except OSError as exc:
            raise TransferError(f"Cannot write {self.temp}: {exc.strerror or exc}.") from None
        self._file = None
        if self.done != self.size or self._digest.hexdigest() != self.sha256:
            raise TransferError(
                f"{self.name} arrived damaged (its size or SHA-256 does not match); "
                "nothing was saved."
            )
        try:
            os.replace(self.temp, self.target)
        except OSError as exc:
            raise TransferError(f"Cannot save {self.target}: {exc.strerror or exc}.") from None

    def discard(self) -> None:
        """Idempotent: close and remove the temporary file."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        with contextlib.suppress(OSError):
            self.temp.unlink()
