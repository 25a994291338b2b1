"""The blob store: private modes, content-addressed paths, dedupe, temp files, sweeps."""

import hashlib
import os
import stat
import time
from pathlib import Path

import pytest

from chatsecure.storage.blobs import LocalBlobs, checked_sha256


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _upload(blobs: LocalBlobs, *chunks: bytes) -> str:
    partial = blobs.begin()
    for chunk in chunks:
        partial.append(chunk)
    blobs.keep(partial)
    return partial.sha256()


def _age(path: Path, seconds: float = 3600) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobs:
    return LocalBlobs(tmp_path / "files")


def test_an_upload_is_hashed_as_it_comes_and_kept_by_content(blobs, tmp_path):
    partial = blobs.begin()
    assert partial.path.parent == tmp_path / "files" / "tmp"
    assert _mode(partial.path) == 0o600
    partial.append(b"hello ")
    partial.append(b"world")
    assert partial.received == 11
    sha = partial.sha256()
    assert sha == hashlib.sha256(b"hello world").hexdigest()
    blobs.keep(partial)
    final = tmp_path / "files" / sha[:2] / sha[2:4] / sha
    assert final.read_bytes() == b"hello world"
    assert _mode(final) == 0o600
    for folder in (final.parent, final.parent.parent, tmp_path / "files", partial.path.parent):
        assert _mode(folder) == 0o700
    assert not partial.path.exists()
    with blobs.open(sha) as f:
        assert f.read() == b"hello world"


def test_temp_names_are_random_and_never_reused(blobs):
    first, second = blobs.begin(), blobs.begin()
    assert first.path != second.path
    assert first.path.name.endswith(".part")
    first.discard()
    second.discard()


def test_the_same_bytes_are_stored_once(blobs, tmp_path):
    sha = _upload(blobs, b"same")
    final = blobs.path(sha)
    inode = final.stat().st_ino
    _age(final)
    assert _upload(blobs, b"sa", b"me") == sha
    assert final.stat().st_ino == inode  # the first copy stays; the second is dropped
    assert time.time() - final.stat().st_mtime < 60  # marked as just used
    assert list((tmp_path / "files" / "tmp").iterdir()) == []


def test_discard_is_idempotent_and_removes_the_temp_file(blobs):
    partial = blobs.begin()
    partial.append(b"half an upload")
    partial.discard()
    partial.discard()
    assert not partial.path.exists()
    with pytest.raises(ValueError, match="kept or discarded"):
        partial.append(b"more")


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "/" + "a" * 63, "g" * 64, "a" * 63 + "\n"],
)
def test_no_path_is_built_from_anything_but_a_sha256(blobs, bad):
    for use in (blobs.path, blobs.open, blobs.delete, checked_sha256):
        with pytest.raises(ValueError, match="not a SHA-256"):
            use(bad)


def test_paths_stay_inside_the_folder(blobs, tmp_path):
    sha = "0" * 64
    assert blobs.path(sha).resolve().is_relative_to((tmp_path / "files").resolve())


def test_open_of_a_missing_blob_and_idempotent_delete(blobs):
    sha = _upload(blobs, b"gone soon")
    blobs.delete(sha)
    blobs.delete(sha)
    with pytest.raises(FileNotFoundError):
        blobs.open(sha)


def test_clear_partials_removes_what_a_crash_left(blobs, tmp_path):
    left = blobs.begin()
    left.append(b"interrupted")
    kept = _upload(blobs, b"complete")
    blobs.clear_partials()
    assert list((tmp_path / "files" / "tmp").iterdir()) == []
    assert blobs.path(kept).exists()
    LocalBlobs(tmp_path / "never made").clear_partials()  # nothing there: no error


def test_clear_partials_puts_back_a_blob_a_crashed_sweep_set_aside(blobs, tmp_path):
    sha = _upload(blobs, b"set aside")
    aside = tmp_path / "files" / "tmp" / f"{sha}.0123abcd.sweep"
    blobs.path(sha).rename(aside)
    blobs.clear_partials()
    assert blobs.path(sha).read_bytes() == b"set aside"
    assert not aside.exists()


def test_delete_if_idle_spares_a_blob_used_recently(blobs):
    sha = _upload(blobs, b"shared")
    assert not blobs.delete_if_idle(sha, 600)
    assert blobs.path(sha).exists()
    _age(blobs.path(sha))
    assert blobs.delete_if_idle(sha, 600)
    assert not blobs.path(sha).exists()
    assert not blobs.delete_if_idle(sha, 600)  # gone already


def test_stored_lists_every_blob_in_order_from_a_point(blobs, tmp_path):
    shas = sorted(_upload(blobs, str(i).encode()) for i in range(20))
    (tmp_path / "files" / "ab").mkdir(exist_ok=True)
    (tmp_path / "files" / "ab" / "stray").write_text("not a blob")
    assert list(blobs.stored()) == shas
    assert list(blobs.stored(after=shas[6])) == shas[7:]
    assert list(LocalBlobs(tmp_path / "none").stored()) == []
