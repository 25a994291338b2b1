"""Backups of the SQLite database: an online copy while the server runs, and a restore.

A backup uses SQLite's online backup API: one consistent snapshot of every committed
transaction, taken in a single read transaction, so the server (in WAL mode) goes on
writing meanwhile. The copy is a self-contained file (rollback journal, no ``-wal``
beside it), checked with ``PRAGMA integrity_check`` before it is renamed into place,
mode 0600: it holds every message.

A restore needs the database to itself. Whether anyone has it open is asked of SQLite:
leaving WAL mode needs the only connection, so ``PRAGMA journal_mode=DELETE`` fails
while a server (or an admin command) has the file open, and otherwise folds any WAL
into the file. The lock is then held until the restored copy has replaced the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from chatsecure.atomicfile import atomic_path
from chatsecure.storage.db import (
    BUSY_TIMEOUT_MS,
    current_revision,
    is_known_revision,
    newer_schema_advice,
)

# Files SQLite keeps beside a database; stale ones must not meet a restored file, which
# SQLite would otherwise read as the new file's journal.
SIDE_FILES = ("-wal", "-shm", "-journal")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


class DatabaseInUseError(BackupError):
    pass


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database (or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def _connect(path: Path, mode: str, timeout: float = BUSY_TIMEOUT_MS / 1000) -> sqlite3.Connection:
    """A connection to an existing file (``mode`` ro or rw), in autocommit."""
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)


def _integrity(connection: sqlite3.Connection) -> str:
    """``ok``, or the first problem ``PRAGMA integrity_check`` found."""
    (result,) = connection.execute("PRAGMA integrity_check").fetchone()
    return str(result)


def copy_database(source: Path, target: Path, *, overwrite: bool) -> None:
    """Copy the database ``source`` to ``target`` (mode 0600), atomically, even while in use.

    Raises FileExistsError when ``target`` exists and not ``overwrite``, BackupError
    when there is no database or the copy is not sound.
    """
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    with atomic_path(target, overwrite=overwrite) as temporary:
        try:
            with (
                contextlib.closing(_connect(source, "ro")) as live,
                contextlib.closing(sqlite3.connect(temporary, isolation_level=None)) as copy,
            ):
                live.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # the live file's WAL mode came along
                problem = _integrity(copy)
        except sqlite3.Error as exc:
            raise BackupError(f"cannot copy {source}: {exc}; nothing was written") from None
        if problem != "ok":
            raise BackupError(f"the copy of {source} is not sound ({problem}); nothing was written")


def backup_revision(path: Path) -> str:
    """The schema revision of a backup, after checking that it is a sound SQLite file.

    Raises BackupError when it is not one, is damaged, or has a schema this chatsecure
    cannot restore (none at all, or a newer chatsecure's). An older known schema is
    fine: ``migrate`` upgrades it after the restore.
    """
    if not path.is_file():
        raise BackupError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    try:
        with contextlib.closing(_connect(path, "ro")) as connection:
            problem = _integrity(connection)
    except sqlite3.DatabaseError as exc:  # not SQLite at all, or a damaged header
        problem = str(exc)
    if problem != "ok":
        raise BackupError(f"{path} is not a sound SQLite database: {problem}")
    engine = create_engine(f"sqlite:///{path.resolve().as_uri()}?mode=ro&uri=true")
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    if revision is None:
        raise BackupError(f"{path} is not a chatsecure database (it has no schema version)")
    if not is_known_revision(revision):
        raise BackupError(newer_schema_advice(revision, f"the backup {path}"))
    return revision


def restore_database(backup: Path, target: Path) -> str:
    """Replace the database ``target`` with ``backup``; the backup's schema revision.

    Refuses (DatabaseInUseError) while anyone has ``target`` open. The new file is
    written beside it and renamed into place, mode 0600 and with the old file's owner,
    and stale ``-wal``/``-shm`` files are removed.
    """
    if target.exists() and backup.resolve() == target.resolve():
        raise BackupError(f"{backup} is the database itself; restore from a backup of it")
    revision = backup_revision(backup)
    with _sole_user(target):
        owner = target.stat() if target.exists() else None
        copy_database(backup, target, overwrite=True)
        if owner is not None:
            _give(target, owner.st_uid, owner.st_gid)
        for suffix in SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{target}{suffix}")
    return revision


@contextlib.contextmanager
def _sole_user(target: Path) -> Iterator[None]:
    """Hold ``target`` exclusively for the block; DatabaseInUseError if someone has it open.

    A missing file has no users: there is nothing to hold.
    """
    if not target.exists():
        yield
        return
    in_use = DatabaseInUseError(
        f"the database {target} is in use: stop chatsecure-server (and any other "
        "chatsecure-admin working on it) first, then restore"
    )
    with contextlib.closing(_connect(target, "rw", timeout=0)) as connection:
        try:
            (mode,) = connection.execute("PRAGMA journal_mode=DELETE").fetchone()
            connection.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            # The primary result code; an extended one (BUSY_RECOVERY...) says the same.
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise in_use from None
            raise BackupError(f"cannot open {target}: {exc}") from None
        if mode != "delete":
            raise in_use
        yield


def _give(path: Path, uid: int, gid: int) -> None:
    """Give ``path`` to the old file's owner and group, as far as this user may.

    Root restoring the database of a service account must leave it that account's;
    anyone else can only give a file to themselves, which it already is.
    """
    with contextlib.suppress(PermissionError):
        os.chown(path, uid, gid)
