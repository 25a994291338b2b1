"""backup, restore and migrate's own backup, on a database no server has open.

The same with a running server (an online backup under load, a refused restore) is in
tests/e2e/test_admin_live.py.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from chatsecure.config import load_settings
from chatsecure.storage import db
from chatsecure.storage.db import make_engine
from chatsecure.storage.store import Store
from tests.admin.conftest import Admin

PASSWORD = "correct horse battery"


def _database(admin: Admin) -> Path:
    return admin.config.parent / "chatsecure.db"


def _names(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [name for (name,) in connection.execute("SELECT name FROM accounts ORDER BY id")]


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(revision)


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        (result,) = connection.execute("PRAGMA integrity_check").fetchone()
    return str(result)


@pytest.fixture
def with_alice(migrated: Admin) -> Admin:
    assert migrated("adduser", "alice", "--password-stdin", stdin=PASSWORD).code == 0
    return migrated


def test_backup_is_a_sound_private_copy_and_is_never_overwritten(with_alice, tmp_path):
    target = tmp_path / "saved" / "chat.db"
    target.parent.mkdir()
    result = with_alice("backup", str(target))
    assert result.code == 0, result.err
    assert str(target) in result.out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _integrity(target) == "ok"
    assert _names(target) == ["alice"]
    with sqlite3.connect(target) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert sorted(p.name for p in target.parent.iterdir()) == ["chat.db"]  # one file

    with_alice("adduser", "bob", "--password-stdin", stdin=PASSWORD)
    refused = with_alice("backup", str(target))
    assert refused.code == 1
    assert "already exists; add --force" in refused.err
    assert _names(target) == ["alice"]
    assert with_alice("backup", str(target), "--force").code == 0
    assert _names(target) == ["alice", "bob"]


def test_backup_into_a_missing_folder_names_the_folder(with_alice, tmp_path):
    result = with_alice("backup", str(tmp_path / "nowhere" / "copy.db"))
    assert result.code == 1
    assert result.err == f"chatsecure-admin: error: no such folder: {tmp_path / 'nowhere'}\n"


def test_backup_without_a_database_or_of_postgresql(admin, write_config, tmp_path):
    result = admin("backup", str(tmp_path / "copy.db"))
    assert result.code == 1
    assert "there is no database at" in result.err
    postgres = Admin(
        write_config(tmp_path / "pg", database={"url": "postgresql://chat:s3cret@db/chat"})
    )
    for argv, tool in ((["backup", "x.db"], "pg_dump"), (["restore", "x.db"], "pg_restore")):
        result = postgres(*argv)
        assert result.code == 1
        assert tool in result.err
        assert "s3cret" not in result.err


def test_restore_replaces_the_database_with_the_backup(with_alice, tmp_path):
    saved = tmp_path / "saved.db"
    with_alice("backup", str(saved))
    with_alice("adduser", "bob", "--password-stdin", stdin=PASSWORD)
    live = _database(with_alice)
    live.chmod(0o644)
    result = with_alice("restore", str(saved))
    assert result.code == 0, result.err
    assert "restored" in result.out
    assert _names(live) == ["alice"]
    assert stat.S_IMODE(live.stat().st_mode) == 0o600
    assert sorted(p.name for p in live.parent.iterdir() if p.name.startswith(live.name)) == [
        live.name
    ]
    # The restored database works for the commands (and so for the server) as before.
    assert with_alice("users").out.splitlines()[1].split()[0] == "alice"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_restore_as_root_leaves_the_database_to_its_owner(with_alice, tmp_path):
    saved = tmp_path / "saved.db"
    with_alice("backup", str(saved))
    live = _database(with_alice)
    os.chown(live, 4242, 4343)  # the service account's
    assert with_alice("restore", str(saved)).code == 0
    assert (live.stat().st_uid, live.stat().st_gid) == (4242, 4343)


def test_restore_onto_a_machine_without_a_database(with_alice, write_config, tmp_path):
    saved = tmp_path / "saved.db"
    with_alice("backup", str(saved))
    fresh = Admin(write_config(tmp_path / "new-machine"))
    result = fresh("restore", str(saved))
    assert result.code == 0, result.err
    assert _names(_database(fresh)) == ["alice"]


def _damaged_copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    data = bytearray(target.read_bytes())
    page = 4096
    data[page : page * 3] = b"\xff" * (page * 2)  # the first table pages after the schema
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize(
    "kind", ["missing", "folder", "text", "damaged", "no schema", "newer", "itself"]
)
def test_restore_checks_the_file_first(with_alice, tmp_path, kind):
    saved = tmp_path / "saved.db"
    with_alice("backup", str(saved))
    live = _database(with_alice)
    before = live.read_bytes()
    candidate = tmp_path / f"{kind}.db"
    if kind == "folder":
        candidate.mkdir()
    elif kind == "text":
        candidate.write_text("username,password\nalice,x\n")
    elif kind == "damaged":
        _damaged_copy(saved, candidate)
    elif kind == "no schema":
        with sqlite3.connect(candidate) as connection:
            connection.execute("CREATE TABLE notes (text)")
    elif kind == "newer":
        shutil.copyfile(saved, candidate)
        with sqlite3.connect(candidate) as connection:
            connection.execute("UPDATE alembic_version SET version_num = '0099'")
    elif kind == "itself":
        candidate = live
    result = with_alice("restore", str(candidate))
    assert result.code == 1
    assert result.err.count("\n") == 1, result.err
    expected = {
        "missing": "no such file",
        "folder": "not a file",
        "text": "is not a sound SQLite database",
        "damaged": "is not a sound SQLite database",
        "no schema": "not a chatsecure database",
        "newer": "this chatsecure is older than the database; upgrade chatsecure",
        "itself": "is the database itself",
    }[kind]
    assert expected in result.err
    assert live.read_bytes() == before


HEAD = db.head_revision()
NEWER = "9999"  # a revision after today's head: what a later chatsecure ships


@pytest.fixture
def newer_migrations(tmp_path):
    """The real migrations plus one that adds a table."""
    folder = tmp_path / "migrations"
    shutil.copytree(db.migrations_dir(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / f"{NEWER}_probe.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "{NEWER}"\ndown_revision = "{HEAD}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade():\n"
        '    op.create_table("probe", sa.Column("id", sa.Integer, primary_key=True))\n\n\n'
        "def downgrade():\n"
        '    op.drop_table("probe")\n',
        encoding="utf-8",
    )
    return folder


def _use_migrations(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setattr(db, "migrations_dir", lambda: folder)


def test_migrate_backs_up_before_it_changes_the_schema(with_alice, newer_migrations, monkeypatch):
    _use_migrations(monkeypatch, newer_migrations)
    result = with_alice("migrate")
    assert result.code == 0, result.err
    assert f"upgraded from {HEAD} to {NEWER}" in result.out
    (backup,) = _database(with_alice).parent.glob(f"chatsecure.{HEAD}.*.db.bak")
    assert f"backed up the schema {HEAD} database to {backup}" in result.err
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert (_revision(backup), _names(backup)) == (HEAD, ["alice"])
    assert _revision(_database(with_alice)) == NEWER
    # Already current: nothing to change, so no backup.
    assert "already at the current schema" in with_alice("migrate").out
    assert len(list(_database(with_alice).parent.glob("*.bak"))) == 1


def test_migrate_no_backup_and_a_fresh_database_take_none(admin, newer_migrations, monkeypatch):
    assert admin("migrate").code == 0  # creating the schema changes no data: no backup
    _use_migrations(monkeypatch, newer_migrations)
    result = admin("migrate", "--no-backup")
    assert result.code == 0, result.err
    assert "backed up" not in result.err
    assert not list(_database(admin).parent.glob("*.bak"))


def test_a_database_newer_than_the_code_says_to_upgrade_chatsecure(
    with_alice, newer_migrations, monkeypatch, tmp_path
):
    with monkeypatch.context() as newer:
        _use_migrations(newer, newer_migrations)
        assert with_alice("migrate", "--no-backup").code == 0
    advice = "this chatsecure is older than the database; upgrade chatsecure"
    for argv in (["users"], ["migrate"], ["backup", str(tmp_path / "copy.db")]):
        result = with_alice(*argv)
        if argv[0] == "backup":  # a backup of any schema is fine: it is only a copy
            assert result.code == 0, result.err
            continue
        assert result.code == 1
        assert advice in result.err
        assert "run" not in result.err
    assert not list(_database(with_alice).parent.glob("*.bak"))
    restore = with_alice("restore", str(tmp_path / "copy.db"))
    assert restore.code == 1
    assert advice in restore.err
    engine = make_engine(load_settings(with_alice.config).database.url)
    assert Store(engine).get_account("alice") is not None
    engine.dispose()
