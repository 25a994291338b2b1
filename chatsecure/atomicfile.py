"""Write a file so that readers see either the old one or the whole new one, never half.

Used for exports, generated passwords, certificates and database backups: a crash, a full
disk or Ctrl-C halfway leaves the target as it was and no stray partial file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def atomic_write(path: Path, *, overwrite: bool = False, mode: int = 0o600) -> Iterator[TextIO]:
    """A UTF-8 text file (no newline translation) that replaces ``path`` on success.

    The temporary file is created with mode 0600 (mkstemp uses ``os.open(..., 0o600)``),
    so secrets such as private keys are never readable by others, not even briefly; a
    wider ``mode`` is applied before anything is written. Without ``overwrite`` an
    existing ``path`` raises FileExistsError before any work is done.
    """
    with (
        _replacement(path, overwrite=overwrite, mode=mode) as (fd, _temporary),
        os.fdopen(fd, "w", encoding="utf-8", newline="", closefd=False) as f,
    ):
        yield f


@contextlib.contextmanager
def atomic_path(path: Path, *, overwrite: bool = False, mode: int = 0o600) -> Iterator[Path]:
    """The name of an empty temporary file that replaces ``path`` once the caller filled it.

    For writers that open a file by name, such as SQLite's backup; modes and
    ``overwrite`` as for ``atomic_write``.
    """
    with _replacement(path, overwrite=overwrite, mode=mode) as (_fd, temporary):
        yield temporary


@contextlib.contextmanager
def _replacement(path: Path, *, overwrite: bool, mode: int) -> Iterator[tuple[int, Path]]:
    """A temporary file beside ``path`` (its descriptor and name), synced and renamed over
    ``path`` when the block ends without an exception, and removed when it does not."""
    if not overwrite and path.exists():
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    if not path.parent.is_dir():  # else the error would name the temporary file
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path.parent))
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode != 0o600:
            os.fchmod(fd, mode)
        yield fd, Path(temporary)
        os.fsync(fd)  # flushes the file, whichever descriptor wrote it
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    finally:
        os.close(fd)
