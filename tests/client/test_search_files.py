"""The client's side of search and files, without a server or a window.

Frames are fed into a ``ChatSession`` whose network only records requests (the
``Session`` harness of ``test_additions``): what goes on the wire, and what the window
is told, for searches, opening a result, uploads under the ack window, resuming, and
downloads checked before they are saved.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import pytest

from chatsecure.client.events import ConnectionLost, LoggedIn
from chatsecure.client.search import SearchHit, hits, snippet
from chatsecure.client.session import (
    MAX_JUMP_PAGES,
    CurrentChanged,
    ImageReady,
    Notice,
    Reveal,
    SearchFailed,
    SearchFound,
    TransferEnded,
    TransferProgress,
    Update,
)
from chatsecure.client.state import ConvKey
from chatsecure.client.transfers import WINDOW, human_size
from chatsecure.client.validation import search_error
from chatsecure.protocol import (
    Deleted,
    Error,
    ErrorCode,
    FileChunk,
    FileData,
    FileGet,
    FileInfo,
    FileOffer,
    FileSlot,
    History,
    HistoryReply,
    Message,
    Ok,
    Search,
    SearchResults,
)
from tests.client.test_additions import TS, Session, _msg

FEATURES = ("rooms2", "edit", "read", "search", "files")
GENERAL = ConvKey.room("general")
CHUNK = 4


@pytest.fixture
def alice(monkeypatch: pytest.MonkeyPatch) -> Session:
    return Session(monkeypatch, features=FEATURES)


def poll_until(alice: Session, kind: type, timeout: float = 5.0) -> list[Update]:
    """Poll (the hasher runs on its own thread) until an update of ``kind`` comes."""
    deadline = time.monotonic() + timeout
    updates: list[Update] = []
    while not any(isinstance(u, kind) for u in updates):
        assert time.monotonic() < deadline, f"no {kind.__name__}: {updates}"
        updates.extend(alice.session.poll())
        time.sleep(0.005)
    return updates


def req_of(alice: Session, request: object) -> int:
    """The ``req`` the recording network gave ``request`` (this very one, not an equal one)."""
    return next(i for i, sent in enumerate(alice.network.sent, 1) if sent is request)


def chunks(alice: Session) -> list[FileChunk]:
    return alice.sent(FileChunk)  # type: ignore[return-value]


def ack(alice: Session, chunk: FileChunk, received: int, **extra: object) -> list[Update]:
    return alice.receive(Ok(req=req_of(alice, chunk), received=received, **extra))  # type: ignore[arg-type]


def offered(alice: Session, tmp_path: Path, data: bytes) -> FileOffer:
    path = tmp_path / "notes.bin"
    path.write_bytes(data)
    assert alice.session.send_file(path) is None
    updates = poll_until(alice, TransferProgress)
    assert TransferProgress(1, "notes.bin", 0, len(data), True) in updates
    (offer,) = alice.sent(FileOffer)
    return offer  # type: ignore[return-value]


def slot(alice: Session, offer: FileOffer) -> list[Update]:
    return alice.receive(FileSlot(req=req_of(alice, offer), upload="tok", chunk_bytes=CHUNK))


# -- search -----------------------------------------------------------------------------


def test_a_search_is_sent_and_its_results_come_back_as_hits(alice: Session) -> None:
    assert alice.session.search("  deploy friday ", GENERAL) is None
    (request,) = alice.sent(Search)
    assert request == Search(q="deploy friday", room="general", limit=20)
    found = [
        _msg(7, "bob", text="we deploy on friday after lunch"),
        Message(id=3, ts=TS, from_="carol", text="friday deploy?", to="alice"),
    ]
    updates = alice.reply(SearchResults, results=tuple(found), more=True)
    (result,) = [u for u in updates if isinstance(u, SearchFound)]
    assert result.more
    assert not result.appended
    assert [(h.where, h.author, h.id, h.key) for h in result.hits] == [
        ("#general", "bob", 7, GENERAL),
        ("carol", "carol", 3, ConvKey.direct("carol")),
    ]
    # More results: older than the last one shown, added to the list.
    assert alice.session.search("deploy friday", None, before=3) is None
    assert alice.sent(Search)[-1] == Search(q="deploy friday", before=3, limit=20)
    (more,) = alice.reply(SearchResults, results=(), more=False)
    assert isinstance(more, SearchFound)
    assert more.appended


def test_only_the_latest_search_is_answered_and_failures_are_said(alice: Session) -> None:
    alice.session.search("one")
    first = len(alice.network.sent)
    alice.session.search("two")
    assert alice.receive(SearchResults(req=first, results=(_msg(1),), more=False)) == []
    assert alice.reply(Error, code=ErrorCode.BAD_REQUEST, message="no words") == [
        SearchFailed("The search failed: no words.")
    ]
    assert alice.session.search("   ") == "Type what to search for."
    assert search_error("a\nb") is not None
    assert search_error("x" * 201) is not None


def test_a_snippet_starts_near_the_first_match() -> None:
    text = "word " * 30 + "the Deploy went fine"
    cut = snippet(text, '"deploy"', limit=40)
    assert cut.startswith("…")
    assert "Deploy" in cut
    assert len(cut) <= 40
    assert snippet("short  text\nhere", "nothing") == "short text here"


def test_opening_a_result_pages_back_until_the_message_is_loaded(alice: Session) -> None:
    alice.receive(HistoryReply(room="general", messages=(_msg(900), _msg(901)), more=True))
    hit = _hit(alice, 5)
    updates = alice.session.open_message(hit)
    assert CurrentChanged(GENERAL) in updates
    assert alice.sent(History)[-1] == History(room="general", before=900, limit=500)
    page = tuple(_msg(i) for i in range(400, 900))
    updates = alice.reply(HistoryReply, room="general", messages=page, more=True)
    assert not any(isinstance(u, Reveal) for u in updates)
    assert alice.sent(History)[-1] == History(room="general", before=400, limit=500)
    page = tuple(_msg(i) for i in range(2, 400))
    updates = alice.reply(HistoryReply, room="general", messages=page, more=True)
    assert updates[-1] == Reveal(GENERAL, 5)
    # Shown already: revealed at once, nothing asked.
    sent = len(alice.network.sent)
    assert alice.session.open_message(_hit(alice, 901))[-1] == Reveal(GENERAL, 901)
    assert len(alice.network.sent) == sent


def test_opening_a_result_pages_back_only_so_far(alice: Session) -> None:
    top = 100_000
    alice.receive(HistoryReply(room="general", messages=(_msg(top),), more=True))
    alice.session.open_message(_hit(alice, 5))
    for page in range(MAX_JUMP_PAGES):
        newest = top - page * 500
        messages = tuple(_msg(i) for i in range(newest - 500, newest))
        updates = alice.reply(HistoryReply, room="general", messages=messages, more=True)
    assert isinstance(updates[-1], Notice)
    assert "more than 10,000 messages back" in updates[-1].text
    assert len(alice.sent(History)) == MAX_JUMP_PAGES


def test_a_result_that_is_gone_is_said_so(alice: Session) -> None:
    alice.session.open_message(_hit(alice, 5))
    updates = alice.reply(HistoryReply, room="general", messages=(_msg(9),), more=False)
    assert isinstance(updates[-1], Notice)
    assert updates[-1].error


def _hit(alice: Session, message_id: int) -> SearchHit:
    return hits(alice.state, "m", (_msg(message_id),))[0]


# -- uploads ----------------------------------------------------------------------------


def test_an_upload_keeps_at_most_eight_chunks_unacknowledged(alice: Session, tmp_path: Path):
    data = os.urandom(CHUNK * 10 + 1)
    offer = offered(alice, tmp_path, data)
    assert offer == FileOffer(name="notes.bin", size=len(data), sha256=hashlib.sha256(data)
                              .hexdigest(), room="general")  # fmt: skip
    slot(alice, offer)
    sent = chunks(alice)
    assert [c.offset for c in sent] == [CHUNK * i for i in range(WINDOW)]
    assert all(c.upload == "tok" for c in sent)
    updates = ack(alice, sent[0], CHUNK)
    assert TransferProgress(1, "notes.bin", CHUNK, len(data), True) in updates
    assert len(chunks(alice)) == WINDOW + 1
    received, index = CHUNK, 1
    while index < len(chunks(alice)):  # acknowledged one by one, each freeing a place
        chunk = chunks(alice)[index]
        index += 1
        received += len(chunk.data)
        final = received == len(data)
        updates = ack(alice, chunk, received, **({"id": 50, "ts": TS} if final else {}))
    assert b"".join(c.data for c in chunks(alice)) == data
    assert updates[-1] == TransferEnded(1, f"Sent notes.bin ({human_size(len(data))}).", ok=True)


def test_bad_upload_with_received_resumes_from_there(alice: Session, tmp_path: Path) -> None:
    data = bytes(range(40))
    slot(alice, offered(alice, tmp_path, data))
    first = chunks(alice)
    ack(alice, first[0], 4)
    ack(alice, first[1], 8)
    alice.receive(Error(req=req_of(alice, first[2]), code=ErrorCode.BAD_UPLOAD, message="offset",
                        received=8))  # fmt: skip
    resent = chunks(alice)[len(first) + 2 :]
    assert resent[0].offset == 8
    assert resent[0].data == data[8:12]
    # The other chunks of the first round get the same complaint: already handled.
    for chunk in first[3:]:
        alice.receive(Error(req=req_of(alice, chunk), code=ErrorCode.BAD_UPLOAD, message="x",
                            received=8))  # fmt: skip
    assert chunks(alice)[len(first) + 2 :] == resent


def test_refused_offers_say_why(alice: Session, tmp_path: Path) -> None:
    offer = offered(alice, tmp_path, b"x" * 100)
    updates = alice.receive(Error(req=req_of(alice, offer), code=ErrorCode.FILE_TOO_LARGE,
                                  message="the limit is 10 bytes"))  # fmt: skip
    (ended,) = updates
    assert isinstance(ended, TransferEnded)
    assert not ended.ok
    assert "larger than this server accepts" in ended.text
    assert "10 bytes" in ended.text
    assert chunks(alice) == []


def test_after_a_reconnect_an_upload_resumes_or_is_offered_again(alice: Session, tmp_path):
    data = bytes(range(60))
    offer = offered(alice, tmp_path, data)
    slot(alice, offer)
    first = chunks(alice)
    ack(alice, first[0], 4)
    before = len(chunks(alice))
    alice.receive(ConnectionLost("reset", 1, 0.1, tuple(range(1, len(alice.network.sent) + 1))))
    alice.receive(LoggedIn("alice", ("general", "dev"), reconnected=True, features=FEATURES))
    again = chunks(alice)[before:]
    assert again[0].offset == 4
    # The server lost the upload with the connection: offered again, from the start.
    alice.receive(Error(req=req_of(alice, again[0]), code=ErrorCode.BAD_UPLOAD, message="gone"))
    offers = alice.sent(FileOffer)
    assert len(offers) == 2
    alice.receive(FileSlot(req=req_of(alice, offers[1]), upload="tok2", chunk_bytes=CHUNK))
    assert chunks(alice)[-1].upload == "tok2"
    assert chunks(alice)[-WINDOW].offset == 0


def test_a_cancelled_upload_sends_nothing_more(alice: Session, tmp_path: Path) -> None:
    slot(alice, offered(alice, tmp_path, bytes(100)))
    sent = chunks(alice)
    assert alice.session.cancel_transfer(1) == [TransferEnded(1, "Cancelled notes.bin.", False)]
    assert ack(alice, sent[0], 4) == []
    assert chunks(alice) == sent


# -- downloads --------------------------------------------------------------------------


def _info(data: bytes, mime: str = "application/octet-stream", sha: str | None = None) -> FileInfo:
    return FileInfo(id="f1", name="report.bin", size=len(data),
                    sha256=sha or hashlib.sha256(data).hexdigest(), mime=mime)  # fmt: skip


def _serve(alice: Session, data: bytes, piece: int = 7) -> list[Update]:
    (get,) = alice.sent(FileGet)
    req = req_of(alice, get)
    updates: list[Update] = []
    for offset in range(0, len(data), piece):
        last = offset + piece >= len(data)
        frame = FileData(req=req, file="f1", offset=offset, data=data[offset : offset + piece],
                         last=last)  # fmt: skip
        updates.extend(alice.receive(frame))
    return updates


def test_a_download_is_checked_then_renamed(alice: Session, tmp_path: Path) -> None:
    data = os.urandom(50)
    target = tmp_path / "out" / "report.bin"
    assert alice.session.save_file(_info(data), target) is None
    assert alice.sent(FileGet) == [FileGet(file="f1")]
    updates = _serve(alice, data)
    assert TransferProgress(1, "report.bin", 7, 50, False) in updates
    assert updates[-1] == TransferEnded(1, f"Saved report.bin to {target}.", ok=True)
    assert target.read_bytes() == data
    assert os.listdir(target.parent) == ["report.bin"]


def test_a_damaged_download_leaves_nothing_behind(alice: Session, tmp_path: Path) -> None:
    data = b"abcdefghij"
    target = tmp_path / "out" / "report.bin"
    alice.session.save_file(_info(data, sha="0" * 64), target)
    updates = _serve(alice, data)
    assert isinstance(updates[-1], TransferEnded)
    assert not updates[-1].ok
    assert "damaged" in updates[-1].text
    assert os.listdir(target.parent) == []


def test_a_download_goes_on_from_what_was_written_after_a_reconnect(alice, tmp_path) -> None:
    data = os.urandom(30)
    target = tmp_path / "report.bin"
    alice.session.save_file(_info(data), target)
    (get,) = alice.sent(FileGet)
    alice.receive(FileData(req=req_of(alice, get), file="f1", offset=0, data=data[:10],
                           last=False))  # fmt: skip
    alice.receive(ConnectionLost("reset", 1, 0.1, ()))
    alice.receive(LoggedIn("alice", ("general", "dev"), reconnected=True, features=FEATURES))
    again = alice.sent(FileGet)[-1]
    assert again == FileGet(file="f1", offset=10)
    # A late frame of the first request is not written twice.
    alice.receive(FileData(req=req_of(alice, get), file="f1", offset=10, data=data[10:20],
                           last=False))  # fmt: skip
    updates = alice.receive(FileData(req=req_of(alice, again), file="f1", offset=10,
                                     data=data[10:], last=True))  # fmt: skip
    assert updates[-1] == TransferEnded(1, f"Saved report.bin to {target}.", ok=True)
    assert target.read_bytes() == data


def test_small_pictures_are_fetched_once_into_a_private_cache(alice: Session, private_config):
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(20)
    info = _info(data, mime="image/png")
    assert alice.session.image_path(info) is None
    assert alice.session.image_path(info) is None
    assert len(alice.sent(FileGet)) == 1
    cache = private_config / "cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    updates = _serve(alice, data, piece=100)
    path = cache / f"{info.sha256}.png"
    assert updates == [ImageReady("f1", path)]
    assert alice.session.image_path(info) == path
    big = FileInfo(id="f2", name="big.png", size=3 << 20, sha256="a" * 64, mime="image/png")
    assert alice.session.image_path(big) is None
    assert alice.session.image_path(_info(data, mime="application/pdf")) is None
    assert len(alice.sent(FileGet)) == 1


def test_a_deleted_message_takes_its_cached_picture_with_it(alice: Session, private_config):
    data = b"GIF89a" + os.urandom(30)
    info = _info(data, mime="image/gif")
    alice.receive(Message(id=8, ts=TS, from_="bob", text="cat.gif", room="general", file=info))
    line = alice.state.conversations[GENERAL].lines[-1]
    assert line.file == info
    alice.session.image_path(info)
    _serve(alice, data, piece=100)
    cached = private_config / "cache" / f"{info.sha256}.gif"
    assert cached.read_bytes() == data
    alice.receive(Deleted(id=8, room="general", by="bob"))
    assert not cached.exists()
    assert alice.state.conversations[GENERAL].lines[-1].file is None
