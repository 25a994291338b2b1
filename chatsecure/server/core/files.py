"""Files: an offer checked in full, pieces streamed to a temporary file, then a message.

An offer names the file's size and SHA-256, so the size limit and the account's quota
are checked before any byte is sent; the quota counts what the account has stored and
what its unfinished uploads will add, under one lock, so two uploads at once cannot both
slip under it. Pieces come in order and go straight to disk (never the whole file in
memory). Once the last byte is in and the hash matches, the file enters the
content-addressed blob store, and an ordinary message carrying it goes through the
message writer: the last piece's ``ok`` is its ``Accepted``. An upload belongs to the
account, not the connection, so a client that reconnects resumes from ``received``.

Downloads are sent by one thread, a piece at a time while the client's queue is short,
so a file never fills the queue a slow client is dropped for, and other users' messages
never wait behind one.
"""

from __future__ import annotations

import logging
import math
import mimetypes
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from chatsecure.server.core.limits import AccountBuckets
from chatsecure.server.core.live import LiveSettings
from chatsecure.server.core.messages import Messages
from chatsecure.server.core.results import (
    Conversation,
    FilePiece,
    Label,
    Received,
    Refusal,
    UploadSlot,
    Why,
)
from chatsecure.server.core.session import Session
from chatsecure.storage.blobs import BlobStore, Partial, remove_orphans, sweep_unreferenced
from chatsecure.storage.store import Store, StoredFile, new_file_id

log = logging.getLogger(__name__)

# Room left in a frame for everything but a piece's base64: type, ids, offset, req.
FRAME_OVERHEAD = 512
# A download's next piece is queued only while less than this waits for its client.
DOWNLOAD_WINDOW = 256 * 1024
# How often the sender looks again at downloads whose clients have not caught up.
DOWNLOAD_POLL = 0.005
# Unfinished uploads hold temporary files: a few per account, a bound in all.
UPLOADS_PER_ACCOUNT = 4
UPLOADS_IN_ALL = 64
# Downloads hold open files: a few per session, a bound in all.
DOWNLOADS_PER_SESSION = 4
DOWNLOADS_IN_ALL = 256
# Fetches are cheap to ask for and dear to serve: a few a second per account.
FETCHES_PER_SECOND = 2.0
FETCH_BURST = 10

UNSUPPORTED = Refusal(Why.UNSUPPORTED, "this server does not share files")


def chunk_bytes(max_frame_bytes: int) -> int:
    """The largest piece whose frame, base64 and all, fits: a multiple of 1 KiB, or of
    3 bytes under the smallest frame limits."""
    fits = (max_frame_bytes - FRAME_OVERHEAD) * 3 // 4
    return fits // 1024 * 1024 if fits >= 1024 else fits // 3 * 3


def _mime(name: str) -> str:
    """A type guessed from the name's extension: a hint for clients, never trusted here."""
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


@dataclass(eq=False)
class _Upload:
    token: str
    account_id: int
    to: Conversation
    name: str
    size: int
    sha256: str
    partial: Partial
    expires: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished: bool = False  # the last byte is in; it is being stored (or was dropped)
    kept: bool = False  # its blob is in the store; its message may not be yet


@dataclass(eq=False)
class _Download:
    session: Session
    label: Label
    file_id: str
    handle: BinaryIO
    offset: int
    size: int
    piece: int  # bytes a piece, as the session's frames allow


class Files:
    def __init__(
        self,
        *,
        settings: LiveSettings,
        store: Store,
        blobs: BlobStore | None,
        messages: Messages,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._store = store
        self._blobs = blobs
        self._messages = messages
        self._clock = clock
        # Guards the uploads, reservations and kept blobs; held for no I/O but a sweep's,
        # since the message writer takes it to settle an upload.
        self._lock = threading.Lock()
        self._offers = threading.Lock()  # one quota check at a time
        self._uploads: dict[str, _Upload] = {}
        self._reserved: dict[int, int] = {}  # account id -> bytes of unfinished uploads
        self._keeping: Counter[str] = Counter()  # blobs kept whose messages are not stored
        self._orphans_after: str | None = ""  # where the walk for orphaned blobs goes on
        self._fetches = AccountBuckets(lambda: (FETCHES_PER_SECOND, FETCH_BURST), clock)
        self._sender = _Sender()

    @property
    def enabled(self) -> bool:
        return self._blobs is not None

    def start(self) -> None:
        if self._blobs is not None:
            self._blobs.clear_partials()
            self._sender.start()

    def stop(self) -> None:
        self._sender.stop()
        with self._lock:
            uploads, self._uploads = list(self._uploads.values()), {}
        for upload in uploads:
            upload.partial.discard()

    def _blob_store(self) -> BlobStore:
        if self._blobs is None:
            raise UNSUPPORTED
        return self._blobs

    @property
    def chunk_bytes(self) -> int:
        return chunk_bytes(self._settings.now.limits.max_frame_bytes)

    # -- uploads ----------------------------------------------------------------------

    def offer(
        self, session: Session, label: Label, to: Conversation, *, name: str, size: int, sha256: str
    ) -> None:
        """Open an upload of ``size`` bytes for ``to``, or refuse it before any byte."""
        blobs = self._blob_store()
        self._messages.pace(session, "sharing files")
        self._messages.address(session, to, name)  # the sender may write there now
        limits = self._settings.now.files
        if size > limits.max_bytes:
            raise Refusal(Why.FILE_TOO_LARGE, f"files may be at most {limits.max_bytes} bytes")
        account_id = session.account_id
        with self._offers:
            # Reserved first, stored second: an upload settling in between (its reservation
            # freed once its file is stored) is counted at least once, never not at all.
            with self._lock:
                mine = sum(1 for u in self._uploads.values() if u.account_id == account_id)
                if mine >= UPLOADS_PER_ACCOUNT or len(self._uploads) >= UPLOADS_IN_ALL:
                    raise Refusal(Why.RATE_LIMITED, "too many uploads at once", retry_after=5)
                reserved = self._reserved.get(account_id, 0)
            used = reserved + self._store.file_bytes(account_id)
            if used + size > limits.quota_bytes:
                left = max(0, limits.quota_bytes - used)
                raise Refusal(Why.QUOTA_EXCEEDED, f"your files may take {left} more bytes")
            token = secrets.token_urlsafe(24)
            expires = self._clock() + limits.upload_timeout
            upload = _Upload(token, account_id, to, name, size, sha256, blobs.begin(), expires)
            with self._lock:
                self._uploads[token] = upload
                self._reserved[account_id] = self._reserved.get(account_id, 0) + size
        session.outbox.reply(label, UploadSlot(token, self.chunk_bytes))

    def chunk(self, session: Session, label: Label, token: str, offset: int, data: bytes) -> None:
        """Append a piece at ``offset``; after the last, store the file and its message."""
        self._blob_store()
        upload = self._uploads.get(token)
        if upload is None or upload.account_id != session.account_id:
            raise Refusal(Why.BAD_UPLOAD, "no such upload (unknown, finished or expired)")
        with upload.lock:
            if upload.finished:
                raise Refusal(Why.BAD_UPLOAD, "no such upload (unknown, finished or expired)")
            received = upload.partial.received
            if offset != received:
                raise Refusal(Why.BAD_UPLOAD, f"expected offset {received}", received=received)
            if len(data) > self.chunk_bytes or received + len(data) > upload.size:
                raise Refusal(
                    Why.BAD_UPLOAD,
                    "a piece larger than chunk_bytes or past the offered size",
                    received=received,
                )
            upload.partial.append(data)
            if upload.partial.received < upload.size:
                session.outbox.reply(label, Received(upload.partial.received))
                return
            upload.finished = True
        self._finish(session, label, upload)

    def _finish(self, session: Session, label: Label, upload: _Upload) -> None:
        with self._lock:
            self._uploads.pop(upload.token, None)
        if upload.partial.sha256() != upload.sha256:
            upload.partial.discard()
            self._settle(upload)
            raise Refusal(Why.BAD_UPLOAD, "the bytes sent do not match the offered SHA-256")
        try:
            with self._lock:  # a sweep from now on spares the blob (see collect)
                upload.kept = True
                self._keeping[upload.sha256] += 1
            self._blob_store().keep(upload.partial)
            stored = StoredFile(
                new_file_id(), upload.name, upload.size, upload.sha256, _mime(upload.name)
            )
            self._messages.share(
                session, label, upload.to, stored, settle=lambda _ok: self._settle(upload)
            )
        except BaseException:
            # A kept blob no file row names is collected with the orphans.
            upload.partial.discard()
            self._settle(upload)
            raise

    def _settle(self, upload: _Upload) -> None:
        """Its file is stored (and counts in the store) or dropped: free its reservation."""
        with self._lock:
            if upload.kept:
                upload.kept = False
                self._keeping[upload.sha256] -= 1
                if not self._keeping[upload.sha256]:
                    del self._keeping[upload.sha256]
            left = self._reserved.get(upload.account_id, 0) - upload.size
            if left > 0:
                self._reserved[upload.account_id] = left
            else:
                self._reserved.pop(upload.account_id, None)

    def expire(self, now: float) -> None:
        """Drop uploads not finished within ``[files] upload_timeout``."""
        with self._lock:
            stale = [u for u in self._uploads.values() if u.expires <= now]
        for upload in stale:
            with upload.lock:
                if upload.finished:
                    continue
                upload.finished = True
            with self._lock:
                self._uploads.pop(upload.token, None)
            upload.partial.discard()
            self._settle(upload)
            log.info(
                "dropped an upload not finished in time (%d of %d bytes)",
                upload.partial.received,
                upload.size,
            )

    def collect(self) -> int:
        """Delete the files no message refers to any more; returns how many blobs went.

        A blob goes once no file row uses it and no upload of this server is between
        keeping it and storing its message, so a deletion takes its file at once. Both
        are judged, and the blob deleted, under the lock an upload must take before it
        keeps a blob: one that comes after finds the blob gone and keeps its own copy.
        (``chatsecure-admin``, another process, can know no such uploads: it spares
        recently used blobs instead.)
        """
        if self._blobs is None:
            return 0
        return sweep_unreferenced(
            self._store,
            self._blobs,
            idle_seconds=0.0,
            spared=lambda: self._keeping,
            guard=self._lock,
        )

    def remove_orphans(self) -> int:
        """Delete a bounded share of the blobs no file row names (left by a crash between
        keeping a blob and storing its message); the walk goes on at the next call."""
        if self._blobs is None:
            return 0
        after = self._orphans_after or ""
        removed, self._orphans_after = remove_orphans(self._store, self._blobs, after=after)
        return removed

    # -- downloads --------------------------------------------------------------------

    def fetch(self, session: Session, label: Label, file_id: str, offset: int) -> None:
        """Stream the file from ``offset`` to the session, if it may read its message."""
        blobs = self._blob_store()
        wait = self._fetches.take(session.account_id)
        if wait:
            raise Refusal(Why.RATE_LIMITED, "fetching files too fast", retry_after=math.ceil(wait))
        missing = Refusal(Why.NO_SUCH_FILE, "no such file")
        found = self._store.readable_file(session.account_id, file_id)
        if found is None:
            raise missing
        try:
            handle = blobs.open(found.sha256)
        except FileNotFoundError:
            log.warning("file %s is in the database but not in the file store", file_id)
            raise missing from None
        start = min(offset, found.size)
        handle.seek(start)
        download = _Download(session, label, file_id, handle, start, found.size, self.chunk_bytes)
        if not self._sender.add(download):
            handle.close()
            raise Refusal(Why.RATE_LIMITED, "too many downloads at once", retry_after=5)


class _Sender:
    """The thread that sends downloads, each only as fast as its client reads."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._downloads: list[_Download] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="file-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join()
        for download in self._downloads:
            download.handle.close()
        self._downloads.clear()

    def add(self, download: _Download) -> bool:
        with self._wake:
            same = sum(1 for d in self._downloads if d.session is download.session)
            if len(self._downloads) >= DOWNLOADS_IN_ALL or same >= DOWNLOADS_PER_SESSION:
                return False
            self._downloads.append(download)
            self._wake.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._downloads and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                downloads = list(self._downloads)
            finished = [d for d in downloads if self._advance(d)]
            with self._wake:
                for download in finished:
                    download.handle.close()
                    self._downloads.remove(download)
                if len(finished) < len(downloads) and not self._stopping:
                    self._wake.wait(DOWNLOAD_POLL)

    def _advance(self, d: _Download) -> bool:
        """Queue pieces while the client's queue is short; True once the download is over."""
        if d.session.ended:
            return True
        outbox = d.session.outbox
        try:
            while outbox.unsent_bytes() < DOWNLOAD_WINDOW:
                data = d.handle.read(d.piece)
                last = d.offset + len(data) >= d.size or not data
                outbox.reply(d.label, FilePiece(d.file_id, d.offset, data, last))
                d.offset += len(data)
                if last:
                    return True
        except OSError:
            log.exception("reading file %s failed", d.file_id)
            outbox.refuse(d.label, Refusal(Why.NO_SUCH_FILE, "the file could not be read"))
            return True
        return False
