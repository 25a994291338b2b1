"""Files (the contract's ``files``), by a client that knows only the contract: offers
checked before any byte, chunks in order with resume, downloads only for readers, and
hostile uploads answered with the contract's errors and nothing left behind."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from tests.e2e.client import ChatClient, Frame
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.e2e.helpers import assert_error, history

MiB = 1024 * 1024
SERVER_CONFIG: dict[str, dict[str, Any]] = {
    "files": {"dir": "files", "max_bytes": 8 * MiB, "quota_bytes": 12 * MiB},
}
WINDOW = 8  # chunks a client may keep unacknowledged


def offer(client: ChatClient, data: bytes, name: str = "report.pdf", **where: str) -> Frame:
    frame = {
        "type": "file_offer",
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **where,
    }
    return client.request(frame)


def chunk_frame(upload: str, data: bytes, offset: int, size: int) -> dict[str, Any]:
    piece = data[offset : offset + size]
    return {
        "type": "file_chunk",
        "upload": upload,
        "offset": offset,
        "data": base64.b64encode(piece).decode(),
    }


def upload(
    client: ChatClient, slot: Frame, data: bytes, *, start: int = 0, stop: int | None = None
) -> Frame:
    """Send ``data[start:stop]`` keeping up to ``WINDOW`` chunks in flight; the last ok."""
    upload_id, size = slot["upload"], slot["chunk_bytes"]
    end = len(data) if stop is None else stop
    offsets = list(range(start, end, size))
    in_flight: list[str] = []
    last: Frame = {}
    for offset in offsets:
        if len(in_flight) == WINDOW:
            last = client.expect(None, req=in_flight.pop(0))
            assert last["type"] == "ok", last
        req = f"c{offset}"
        frame = chunk_frame(upload_id, data, offset, min(size, end - offset))
        client.send({**frame, "req": req})
        in_flight.append(req)
    for req in in_flight:
        last = client.expect(None, req=req)
        assert last["type"] == "ok", last
    return last


def download(client: ChatClient, file_id: str, offset: int = 0) -> bytes:
    req = f"get{client.new_req()}"
    client.send({"type": "file_get", "file": file_id, "offset": offset, "req": req})
    received = bytearray()
    while True:
        frame = client.expect(None, req=req)
        assert frame["type"] == "file_data", frame
        assert frame["file"] == file_id
        assert frame["offset"] == offset + len(received), frame
        received += base64.b64decode(frame["data"])
        if frame["last"]:
            return bytes(received)


def files_left(server: ServerProcess) -> list[Path]:
    """Every file under ``[files] dir``."""
    return sorted(p for p in (server.directory / "files").rglob("*") if p.is_file())


def test_a_member_downloads_what_another_uploaded_and_an_outsider_cannot(
    server: ServerProcess,
) -> None:
    alice, bob, eve = server.new_users(3)
    a = server.member(alice, "files-room")
    b = server.member(bob, "files-room")
    e = server.login(eve)
    assert "files" in a.hello["features"]  # type: ignore[index]
    data = os.urandom(5 * MiB + 123)
    slot = offer(a, data, room="files-room")
    assert slot["type"] == "file_slot", slot
    assert 1024 <= slot["chunk_bytes"] <= 65536
    done = upload(a, slot, data)
    assert done["received"] == len(data)
    message_id = done["id"]
    assert isinstance(message_id, int)
    sha = hashlib.sha256(data).hexdigest()
    shared = b.expect("message", id=message_id)
    assert shared["text"] == "report.pdf"
    assert shared["from"] == alice
    file = shared["file"]
    assert file["name"] == "report.pdf"
    assert file["size"] == len(data)
    assert file["sha256"] == sha
    assert file["mime"] == "application/pdf"
    assert download(b, file["id"]) == data
    assert download(b, file["id"], offset=len(data) - 10) == data[-10:]
    [stored] = [m for m in history(b, room="files-room")["messages"] if m["id"] == message_id]
    assert stored["file"] == file
    assert_error(e.request({"type": "file_get", "file": file["id"]}), "no_such_file")
    assert_error(e.request({"type": "file_get", "file": "no-such-id"}), "no_such_file")
    # Kept by content: one file, 0600, in 0700 folders, named by its hash.
    [kept] = [p for p in files_left(server) if p.name == sha]
    assert kept.stat().st_mode & 0o777 == 0o600
    assert kept.parent.stat().st_mode & 0o777 == 0o700
    assert kept.read_bytes() == data


def test_a_direct_file_is_for_the_two_only(server: ServerProcess) -> None:
    alice, bob, eve = server.new_users(3)
    a, b, e = server.login(alice), server.login(bob), server.login(eve)
    data = b"just for you\n" * 100
    done = upload(a, offer(a, data, name="note.txt", to=bob), data)
    shared = b.expect("message", id=done["id"])
    assert shared["to"] == bob
    assert shared["file"]["mime"] == "text/plain"
    assert download(b, shared["file"]["id"]) == data
    assert download(a, shared["file"]["id"]) == data
    assert_error(e.request({"type": "file_get", "file": shared["file"]["id"]}), "no_such_file")


def test_offers_over_the_limits_are_refused_before_any_byte(server: ServerProcess) -> None:
    alice, bob = server.new_users(2)
    a = server.member(alice, "files-limits")
    big = {"type": "file_offer", "room": "files-limits", "name": "big.iso", "sha256": "0" * 64}
    assert_error(a.request({**big, "size": 8 * MiB + 1}), "file_too_large")
    assert offer(a, b"x" * 10, room="files-limits")["type"] == "file_slot"  # 8 MiB is fine
    # The quota counts unfinished uploads: 8 MiB reserved, 4 MiB + 1 more is over 12 MiB.
    first = a.request({**big, "size": 8 * MiB})
    assert first["type"] == "file_slot", first
    assert_error(a.request({**big, "size": 4 * MiB}), "quota_exceeded")
    # Nobody else's quota is touched; a non-member cannot even offer.
    b = server.login(bob)
    assert_error(b.request({**big, "size": 10}), "not_member")
    assert_error(b.request({**big, "room": "files-nowhere", "size": 10}), "no_such_room")


def test_the_quota_holds_against_two_offers_at_once(server: ServerProcess) -> None:
    alice = server.new_user()
    a1 = server.member(alice, "files-race")
    a2 = server.login(alice)
    frame = {
        "type": "file_offer",
        "room": "files-race",
        "name": "half.bin",
        "sha256": "0" * 64,
        "size": 7 * MiB,
    }
    replies: list[Frame] = []
    go = threading.Barrier(2)

    def ask(client: ChatClient) -> None:
        go.wait()
        replies.append(client.request(frame))

    threads = [threading.Thread(target=ask, args=(c,)) for c in (a1, a2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["type"] for r in replies) == ["error", "file_slot"], replies
    [refused] = [r for r in replies if r["type"] == "error"]
    assert refused["code"] == "quota_exceeded"


def test_an_interrupted_upload_resumes_from_received(server: ServerProcess) -> None:
    alice, bob = server.new_users(2)
    a = server.member(alice, "files-resume")
    b = server.member(bob, "files-resume")
    data = os.urandom(600 * 1024)
    slot = offer(a, data, name="photo.png", room="files-resume")
    size = slot["chunk_bytes"]
    half = upload(a, slot, data, stop=3 * size)
    assert half == {"type": "ok", "req": half["req"], "received": 3 * size}
    a.close()  # the connection drops mid-upload

    again = server.login(alice)
    where = again.request(chunk_frame(slot["upload"], data, 0, size))
    assert_error(where, "bad_upload")
    assert where["received"] == 3 * size
    done = upload(again, slot, data, start=where["received"])
    assert done["received"] == len(data)
    shared = b.expect("message", id=done["id"])
    assert shared["file"]["mime"] == "image/png"
    assert download(b, shared["file"]["id"]) == data


def test_hostile_chunks_get_the_contracts_errors(server: ServerProcess) -> None:
    alice, bob = server.new_users(2)
    a = server.member(alice, "files-hostile")
    b = server.login(bob)
    data = os.urandom(100_000)
    slot = offer(a, data, room="files-hostile")
    token, size = slot["upload"], slot["chunk_bytes"]
    # A wrong offset, ahead or behind: bad_upload saying where to resume.
    for offset in (1, size, 10**9):
        reply = a.request(chunk_frame(token, data, offset, 10) | {"offset": offset})
        assert_error(reply, "bad_upload")
        assert reply["received"] == 0
    assert upload(a, slot, data, stop=size)["received"] == size
    # More than chunk_bytes, or past the offered size.
    too_big = base64.b64encode(b"y" * (size + 1)).decode()
    reply = a.request({"type": "file_chunk", "upload": token, "offset": size, "data": too_big})
    assert_error(reply, "bad_upload")
    assert reply["received"] == size
    tail = {"type": "file_chunk", "upload": token, "offset": size}
    small = offer(a, b"0123456789", room="files-hostile")
    past = {"type": "file_chunk", "upload": small["upload"], "offset": 0}
    reply = a.request({**past, "data": base64.b64encode(b"0123456789!").decode()})
    assert_error(reply, "bad_upload")
    assert reply["received"] == 0
    # Someone else's token is no upload of theirs.
    assert_error(b.request({**tail, "data": ""}), "bad_upload")
    # Bad base64, a bad token: bad_request / bad_upload.
    assert_error(a.request({**tail, "data": "not base64!"}), "bad_request")
    assert_error(a.request({**tail, "upload": "nope", "data": ""}), "bad_upload")
    # Names that are paths or hold control characters, and empty files.
    base = {"type": "file_offer", "room": "files-hostile", "size": 1, "sha256": "0" * 64}
    for name in ["../../etc/passwd", "a/b", "c:\\x", "bell\x07", ".", ""]:
        assert_error(a.request({**base, "name": name}), "bad_request")
    assert_error(a.request({**base, "name": "empty", "size": 0}), "bad_request")


def test_a_wrong_hash_drops_the_upload_and_leaves_nothing(server: ServerProcess) -> None:
    alice = server.new_user()
    a = server.member(alice, "files-hash")
    before = files_left(server)
    data = os.urandom(70_000)
    frame = {
        "type": "file_offer",
        "room": "files-hash",
        "name": "x.bin",
        "size": len(data),
        "sha256": hashlib.sha256(b"something else").hexdigest(),
    }
    slot = a.request(frame)
    size = slot["chunk_bytes"]
    assert a.request(chunk_frame(slot["upload"], data, 0, size))["type"] == "ok"
    last = a.request(chunk_frame(slot["upload"], data, size, size))
    assert_error(last, "bad_upload")
    assert "received" not in last
    gone = a.request(chunk_frame(slot["upload"], data, 0, size))
    assert_error(gone, "bad_upload")
    assert files_left(server) == before
    assert not [f for f in a.sync() if f["type"] == "message"]


def test_deleting_the_message_deletes_the_file(server: ServerProcess) -> None:
    alice = server.new_user()
    a = server.member(alice, "files-delete")
    data = os.urandom(3000)
    sha = hashlib.sha256(data).hexdigest()
    done = upload(a, offer(a, data, room="files-delete"), data)
    message = a.expect("message", id=done["id"])
    assert any(p.name == sha for p in files_left(server))
    assert a.request({"type": "delete", "id": done["id"]})["type"] == "ok"
    assert not any(p.name == sha for p in files_left(server))
    assert_error(a.request({"type": "file_get", "file": message["file"]["id"]}), "no_such_file")
    assert_error(a.request({"type": "edit", "id": done["id"], "text": "x"}), "no_such_message")


def test_the_same_content_twice_is_kept_once_until_both_are_deleted(
    server: ServerProcess,
) -> None:
    alice = server.new_user()
    a = server.member(alice, "files-twice")
    data = os.urandom(2000)
    sha = hashlib.sha256(data).hexdigest()
    first = upload(a, offer(a, data, room="files-twice"), data)
    second = upload(a, offer(a, data, name="copy.pdf", room="files-twice"), data)
    assert [p.name for p in files_left(server)].count(sha) == 1
    assert_error(a.request({"type": "edit", "id": first["id"], "text": "x"}), "not_allowed")
    assert a.request({"type": "delete", "id": first["id"]})["type"] == "ok"
    assert [p.name for p in files_left(server)].count(sha) == 1
    assert a.request({"type": "delete", "id": second["id"]})["type"] == "ok"
    assert sha not in [p.name for p in files_left(server)]


def test_an_abandoned_upload_is_dropped_with_its_temporary_file(
    server_factory: ServerFactory,
) -> None:
    server = server_factory({"files": {"dir": "files", "upload_timeout": 2}})
    alice = server.new_user()
    a = server.member(alice, "files-abandoned")
    data = os.urandom(100_000)
    slot = offer(a, data, room="files-abandoned")
    assert a.request(chunk_frame(slot["upload"], data, 0, 1000))["type"] == "ok"
    assert files_left(server), "the upload is in a temporary file"
    deadline = time.monotonic() + 15
    while files_left(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert files_left(server) == []
    reply = a.request(chunk_frame(slot["upload"], data, 1000, 1000))
    assert_error(reply, "bad_upload")


def test_without_files_the_requests_are_unknown(server_factory: ServerFactory) -> None:
    server = server_factory({"files": {"enabled": False}})
    a = server.login(server.new_user())
    assert "files" not in a.hello["features"]  # type: ignore[index]
    assert "search" in a.hello["features"]  # type: ignore[index]
    frame = {"type": "file_offer", "to": "nobody1", "name": "a", "size": 1, "sha256": "0" * 64}
    assert_error(a.request(frame), "unknown_type")


def test_a_download_is_paced_by_a_slow_reader(server_factory: ServerFactory) -> None:
    """A 2 MiB download to a client that pauses, on a server that drops a client with
    1 MiB unsent: the file waits for the reader, the queue never fills."""
    server = server_factory({"files": {"dir": "files"}, "limits": {"max_queued_bytes": MiB}})
    alice = server.new_user()
    a = server.member(alice, "files-slow")
    data = os.urandom(2 * MiB)
    done = upload(a, offer(a, data, room="files-slow"), data)
    file_id = a.expect("message", id=done["id"])["file"]["id"]
    slow = server.login(alice, receive_buffer=4096)
    slow.send({"type": "file_get", "file": file_id, "req": "slow"})
    time.sleep(2)  # not reading at all for a while
    received = bytearray()
    while True:
        frame = slow.expect("file_data", req="slow")
        received += base64.b64decode(frame["data"])
        if frame["last"]:
            break
    assert bytes(received) == data
    assert slow.request({"type": "ping"})["type"] == "pong"
