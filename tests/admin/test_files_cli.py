"""``chatsecure-admin`` and shared files: export copies them, purge and erase sweep them."""

import json
import os
import stat
import time
from pathlib import Path

import pytest

from chatsecure.config import load_settings
from chatsecure.storage.blobs import LocalBlobs
from chatsecure.storage.db import make_engine
from chatsecure.storage.store import NewMessage, Store, StoredFile, new_file_id
from tests.admin.conftest import Admin

PASSWORD = "correct horse battery"


class Shared:
    """A migrated server with alice and bob, and a way to share files as them."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin
        settings = load_settings(admin.config)
        self.engine = make_engine(settings.database.url)
        self.store = Store(self.engine)
        self.blobs = LocalBlobs(settings.files.dir)
        for name in ("alice", "bob"):
            assert admin("adduser", name, "--password-stdin", stdin=PASSWORD).code == 0
        self.ids = {a.name: a.id for a in self.store.list_accounts()}

    def share(self, sender: str, data: bytes, name: str, *, to: str | None = None) -> StoredFile:
        partial = self.blobs.begin()
        partial.append(data)
        self.blobs.keep(partial)
        then = time.time() - 3600  # long past any upload's commit: sweeps may take it
        os.utime(self.blobs.path(partial.sha256()), (then, then))
        file = StoredFile(new_file_id(), name, len(data), partial.sha256(), "text/plain")
        where: dict[str, object] = (
            {"room_id": self.store.room_id("general"), "room_name": "general"}
            if to is None
            else {"recipient_id": self.ids[to], "recipient_name": to}
        )
        self.store.insert_messages(
            [NewMessage(self.ids[sender], sender, name, file=file, **where)]  # type: ignore[arg-type]
        )
        return file

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def shared(migrated):
    server = Shared(migrated)
    yield server
    server.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_export_with_files_copies_them_under_safe_names(shared, tmp_path):
    report = shared.share("alice", b"quarterly numbers", "../../report.txt")
    shared.share("bob", b"unrelated", "bob.txt", to="alice")
    folder = tmp_path / "out" / "files"
    result = shared.admin(
        "export", "--room", "general", "--format", "jsonl", "--with-files", str(folder)
    )
    assert result.code == 0, result.err
    (record,) = (json.loads(line) for line in result.out.splitlines())
    saved = f"{report.id}-_.._report.txt"
    assert record["file"] == {
        "id": report.id,
        "name": "../../report.txt",
        "size": 17,
        "sha256": report.sha256,
        "mime": "text/plain",
        "saved_as": saved,
    }
    assert [p.name for p in folder.iterdir()] == [saved]  # bob's direct file is not in #general
    assert (folder / saved).read_bytes() == b"quarterly numbers"
    assert _mode(folder / saved) == 0o600
    assert _mode(folder) == 0o700
    assert "copied 1 files" in result.err
    again = shared.admin("export", "--room", "general", "--with-files", str(folder))
    assert again.code == 1
    assert "--force" in again.err
    forced = ("export", "--room", "general", "--with-files", str(folder), "--force")
    assert shared.admin(*forced).code == 0


def test_export_with_files_reports_a_missing_blob(shared, tmp_path):
    gone = shared.share("alice", b"lost", "lost.txt")
    shared.blobs.delete(gone.sha256)
    result = shared.admin("export", "--user", "alice", "--with-files", str(tmp_path / "f"))
    assert result.code == 0, result.err
    assert f"the file {gone.id} of message" in result.err
    assert "1 gone from the file store" in result.err
    assert f"[file {gone.id}-lost.txt, 4 bytes]" in result.out


def test_export_with_files_refuses_a_file_as_the_folder(shared, tmp_path):
    (tmp_path / "taken").write_text("x")
    result = shared.admin("export", "--user", "alice", "--with-files", str(tmp_path / "taken"))
    assert result.code == 1
    assert "is not a folder" in result.err


def _age_messages(shared: Shared) -> None:
    with shared.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE messages SET ts_ms = 1000")


def test_purge_removes_the_files_of_purged_messages(shared):
    old = shared.share("alice", b"old news", "old.txt")
    _age_messages(shared)
    new = shared.share("alice", b"fresh", "new.txt")
    result = shared.admin("purge", "--before", "2000-01-01", "--yes")
    assert result.code == 0, result.err
    assert "deleted 1 file no message shares any more" in result.err
    assert not shared.blobs.path(old.sha256).exists()
    assert shared.blobs.path(new.sha256).exists()


def test_deluser_erase_removes_its_files_but_not_shared_content(shared):
    secret = shared.share("bob", b"bob only", "mine.txt", to="alice")
    same = shared.share("bob", b"both of us", "a.txt")
    kept = shared.share("alice", b"both of us", "b.txt")
    assert shared.admin("deluser", "bob", "--erase", "--yes").code == 0
    assert not shared.blobs.path(secret.sha256).exists()
    assert shared.blobs.path(same.sha256).exists()
    assert shared.store.readable_file(shared.ids["alice"], kept.id) == kept


def test_deluser_without_erase_keeps_files(shared):
    file = shared.share("bob", b"stays", "stays.txt")
    assert shared.admin("deluser", "bob", "--yes").code == 0
    assert shared.blobs.path(file.sha256).exists()
    assert shared.store.readable_file(shared.ids["alice"], file.id) == file


def test_purge_with_files_disabled_leaves_the_blobs(shared):
    old = shared.share("alice", b"old", "old.txt")
    _age_messages(shared)
    text = shared.admin.config.read_text(encoding="utf-8") + "[files]\nenabled = false\n"
    shared.admin.config.write_text(text, encoding="utf-8")
    assert shared.admin("purge", "--before", "2000-01-01", "--yes").code == 0
    assert shared.blobs.path(old.sha256).exists()
