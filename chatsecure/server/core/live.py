"""Settings that a reload replaces while the server runs.

Every part of the service holds the one ``LiveSettings`` and reads it where it uses a
value (``live.now.limits.idle_timeout``), never keeping a section for later: so a reload
is one assignment, seen by every thread at its next use, and nothing has to be told.
"""

from __future__ import annotations

from chatsecure.config import Settings


class LiveSettings:
    """The settings in force now; ``replace`` swaps them whole (an atomic assignment)."""

    __slots__ = ("now",)

    def __init__(self, settings: Settings) -> None:
        self.now = settings

    def replace(self, settings: Settings) -> None:
        self.now = settings
