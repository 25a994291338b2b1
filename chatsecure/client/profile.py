"""What the client remembers between runs: the last successful login (never a password)
and the person's settings.

Files live in ``$XDG_CONFIG_HOME/chatsecure`` (or ``~/.config/chatsecure``), written
atomically so a crash never leaves half a file that would break the next start.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from chatsecure.atomicfile import atomic_write

LAST_LOGIN_FILE = "last_login.json"
SETTINGS_FILE = "settings.json"
CACHE_FOLDER = "cache"


def config_dir() -> Path:
    """The per-user folder for the client's small files (not created here)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chatsecure"


def cache_dir(folder: Path | None = None) -> Path:
    """Where fetched pictures are kept for their thumbnails: created 0700, like its parent,
    since what people share in private conversations is theirs alone."""
    base = folder or config_dir()
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = base / CACHE_FOLDER
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def write_json(path: Path, data: object) -> None:
    """Replace ``path`` with ``data`` as JSON, creating the folder (0700) if needed."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with atomic_write(path, overwrite=True) as out:
        json.dump(data, out, indent=2, sort_keys=True)
        out.write("\n")


def read_json(path: Path) -> object:
    """The JSON in ``path``, or ``None`` if it is missing or unreadable (we start fresh)."""
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class LastLogin:
    host: str
    port: int
    username: str


def load_last_login(folder: Path | None = None) -> LastLogin | None:
    data = read_json((folder or config_dir()) / LAST_LOGIN_FILE)
    if not isinstance(data, dict):
        return None
    host, port, username = data.get("host"), data.get("port"), data.get("username")
    if isinstance(host, str) and isinstance(port, int) and isinstance(username, str):
        return LastLogin(host, port, username)
    return None


def save_last_login(login: LastLogin, folder: Path | None = None) -> None:
    write_json(
        (folder or config_dir()) / LAST_LOGIN_FILE,
        {"host": login.host, "port": login.port, "username": login.username},
    )


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Choices made in the Settings dialog."""

    notify_mentions: bool = True  # a desktop notification for @mentions while away


def load_client_settings(folder: Path | None = None) -> ClientSettings:
    """The saved settings, with defaults for what is missing or unreadable."""
    data = read_json((folder or config_dir()) / SETTINGS_FILE)
    defaults = ClientSettings()
    if not isinstance(data, dict):
        return defaults
    notify = data.get("notify_mentions")
    return ClientSettings(notify if isinstance(notify, bool) else defaults.notify_mentions)


def save_client_settings(settings: ClientSettings, folder: Path | None = None) -> None:
    """Saved with mode 0600, like every file here: only this user reads them."""
    write_json(
        (folder or config_dir()) / SETTINGS_FILE, {"notify_mentions": settings.notify_mentions}
    )
