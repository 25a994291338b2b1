"""The bytes of shared files, kept on disk by content: ``<dir>/ab/cd/<sha256>``.

A path is only ever built from a SHA-256 this module computed or checked (64 lowercase
hex digits), never from a name a client sent, so no upload can reach outside ``dir``.
Two uploads of the same bytes share one blob; the files table says which messages use
it, and ``sweep_unreferenced`` deletes blobs once no row does.

An upload streams into a private temporary file under ``<dir>/tmp`` (``Partial``),
hashed as it comes; ``keep`` moves it into place atomically after an fsync, so a blob
on disk is always whole. Files are 0600 and folders 0700: they hold what users shared.

Sweeping races with uploads of the same content: an upload may find the blob present
(and keep nothing of its own) just before a sweep deletes it, then commit a row that
refers to it. So ``keep`` marks the blob as just used (its mtime), and a sweep deletes
only blobs idle for ``SWEEP_IDLE_SECONDS``: far longer than an upload takes from
``keep`` to its commit. A sweep first renames the blob aside, so it judges the idle
time of a file no upload can touch any more, and puts it back if it was used.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, nullcontext, suppress
from pathlib import Path
from typing import BinaryIO, Protocol

from chatsecure.storage.store import Store

PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
TEMP_FOLDER = "tmp"
SWEEP_SUFFIX = ".sweep"  # a blob a sweep set aside in tmp, named <sha256>.<random>.sweep
# A blob used this recently is never swept (see the module's docstring).
SWEEP_IDLE_SECONDS = 600.0
SWEEP_BATCH = 1000  # file rows per sweep transaction


def checked_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lowercase hex digits; ValueError otherwise."""
    if not SHA256_HEX.fullmatch(sha256):
        raise ValueError("not a SHA-256 in lowercase hex")
    return sha256


class Partial:
    """An upload in progress: a private temporary file and the hash of what it holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received = 0
        self._hash = hashlib.sha256()
        self._fd: int | None = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE
        )

    def append(self, data: bytes) -> None:
        if self._fd is None:
            raise ValueError("the upload was kept or discarded")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._hash.update(data)
        self.received += len(data)

    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Close and remove the temporary file; nothing happens the second time."""
        self._close()
        with suppress(FileNotFoundError):
            self.path.unlink()

    def _close(self, *, sync: bool = False) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)


class BlobStore(Protocol):
    def begin(self) -> Partial: ...

    def keep(self, partial: Partial) -> None: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def delete(self, sha256: str) -> None: ...

    def clear_partials(self) -> None: ...

    def delete_if_idle(self, sha256: str, idle_seconds: float) -> bool: ...

    def stored(self, *, after: str = "") -> Iterator[str]: ...


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobs:
    """Blobs in a folder of the local file system."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._temp = folder / TEMP_FOLDER

    def path(self, sha256: str) -> Path:
        """Where the blob of ``sha256`` lives; ValueError unless it is a SHA-256."""
        checked_sha256(sha256)
        return self.folder / sha256[:2] / sha256[2:4] / sha256

    def _make_folder(self, folder: Path) -> list[Path]:
        """``folder`` and its missing parents, each 0700 (mkdir's mode, not the umask's);
        the folders whose entries changed (the parents of those made), to fsync."""
        missing: list[Path] = []
        while not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            with suppress(FileExistsError):
                path.mkdir(mode=PRIVATE_FOLDER_MODE)
                path.chmod(PRIVATE_FOLDER_MODE)
        return [path.parent for path in missing]

    def begin(self) -> Partial:
        self._make_folder(self._temp)
        return Partial(self._temp / f"{secrets.token_hex(16)}.part")

    def keep(self, partial: Partial) -> None:
        """Move the upload to its content's place, durably; the same bytes stored already
        are kept instead (and marked as just used), and the upload is dropped."""
        final = self.path(partial.sha256())
        partial._close(sync=True)
        try:
            os.utime(final)
        except FileNotFoundError:
            changed = self._make_folder(final.parent)
            os.replace(partial.path, final)
            for folder in (final.parent, *changed):
                _fsync_folder(folder)
        else:
            partial.discard()

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def delete(self, sha256: str) -> None:
        """Remove the blob if it is there. Its folders stay: removing one could race with
        an upload moving a blob into it (there are at most 65,536 of them)."""
        with suppress(FileNotFoundError):
            self.path(sha256).unlink()

    def delete_if_idle(self, sha256: str, idle_seconds: float) -> bool:
        """Delete the blob unless ``keep`` used it within ``idle_seconds``; whether it went.

        Renamed aside first: an upload that finds it gone then stores its own copy, and
        one that used it before the rename shows in its mtime, so it is put back.
        """
        path = self.path(sha256)
        if not path.exists():
            return False
        self._make_folder(self._temp)
        aside = self._temp / f"{sha256}.{secrets.token_hex(8)}{SWEEP_SUFFIX}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:  # another sweep took it
            return False
        try:
            if time.time() - aside.stat().st_mtime < idle_seconds:
                os.replace(aside, path)  # the same bytes as any copy an upload made meanwhile
                return False
            aside.unlink()
        except FileNotFoundError:  # a starting server's clear_partials put it back
            return False
        return True

    def clear_partials(self) -> None:
        """Remove the uploads left in ``tmp`` when the server stopped; put back a blob a
        sweep had set aside (``remove_orphans`` takes it later if it is unused)."""
        if not self._temp.is_dir():
            return
        for entry in self._temp.iterdir():
            sha256 = entry.name.partition(".")[0]
            with suppress(FileNotFoundError):
                if entry.name.endswith(SWEEP_SUFFIX) and SHA256_HEX.fullmatch(sha256):
                    os.replace(entry, self.path(sha256))
                else:
                    entry.unlink()

    def stored(self, *, after: str = "") -> Iterator[str]:
        """The SHA-256 of every blob, in order, those after ``after`` only."""
        for first in self._folders(self.folder, after[:2]):
            for second in self._folders(first, after[2:4] if first.name == after[:2] else ""):
                for entry in sorted(second.iterdir()):
                    if SHA256_HEX.fullmatch(entry.name) and entry.name > after:
                        yield entry.name

    @staticmethod
    def _folders(parent: Path, start: str) -> list[Path]:
        """The two-hex-digit subfolders of ``parent`` from ``start`` on, in order."""
        if not parent.is_dir():
            return []
        return sorted(
            p
            for p in parent.iterdir()
            if re.fullmatch(r"[0-9a-f]{2}", p.name) and p.name >= start and p.is_dir()
        )


def sweep_unreferenced(
    store: Store,
    blobs: BlobStore,
    *,
    batch: int = SWEEP_BATCH,
    idle_seconds: float = SWEEP_IDLE_SECONDS,
    spared: Callable[[], Collection[str]] = frozenset,
    guard: AbstractContextManager[object] | None = None,
) -> int:
    """Drop file rows no message refers to, in short transactions of ``batch``, and
    delete the blobs no row uses any more; how many blobs went.

    A blob used within ``idle_seconds`` stays (see the module's docstring); if it is
    still unused later, ``remove_orphans`` takes it. A process that knows which blobs
    its uploads are about to use says so by ``spared``, judged with the deletions under
    ``guard``, and may then pass no idle time at all.
    """
    removed = 0
    while True:
        shas = store.sweep_files(limit=batch)
        with guard or nullcontext():
            idle = set(shas) - set(spared()) - store.shas_in_use(shas)
            removed += sum(blobs.delete_if_idle(sha, idle_seconds) for sha in sorted(idle))
        if not shas and not store.has_unreferenced_files():
            return removed


def remove_orphans(
    store: Store,
    blobs: BlobStore,
    *,
    after: str = "",
    limit: int = 10_000,
    idle_seconds: float = SWEEP_IDLE_SECONDS,
) -> tuple[int, str | None]:
    """Delete blobs that no file row uses (an upload kept but never committed, say by a
    crash between the two), looking at up to ``limit`` blobs after ``after``.

    Returns how many went and where the next call goes on (None: the walk is done), so
    housekeeping can spread a walk of many blobs over many ticks.
    """
    removed = 0
    last: str | None = None
    chunk: list[str] = []

    def judge() -> int:
        used = store.shas_in_use(chunk)
        return sum(blobs.delete_if_idle(sha, idle_seconds) for sha in chunk if sha not in used)

    for count, sha in enumerate(blobs.stored(after=after), 1):
        chunk.append(sha)
        last = sha
        if len(chunk) == SWEEP_BATCH:
            removed += judge()
            chunk = []
        if count == limit:
            removed += judge()
            return removed, last
    removed += judge()
    return removed, None
