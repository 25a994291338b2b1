"""What the installed package knows about itself: its version and the files it ships."""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "chatsecure"
_PACKAGE_ROOT = Path(__file__).resolve().parent


@functools.cache  # read once: the server puts it in every hello
def version() -> str:
    """The installed chatsecure's version, from the package metadata (pyproject.toml)."""
    return metadata.version(DISTRIBUTION)


def version_text(program: str) -> str:
    """What ``--version`` prints."""
    return f"{program} {version()}"


def shipped(name: str) -> Path:
    """A top-level file or folder of the repository that the wheel carries in the package.

    pyproject.toml's ``force-include`` puts it inside the installed package; an editable
    install of a checkout has it at the repository's top level instead.
    """
    inside = _PACKAGE_ROOT / name
    return inside if inside.exists() else _PACKAGE_ROOT.parent / name
