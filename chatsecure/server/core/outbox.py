"""The seam between the chat service and the wire adapters that speak for it.

Each session has an ``Outbox``, given by its adapter: the service puts replies,
refusals and notices into it, and the adapter encodes them in its own format. For
broadcasts the hub groups a room's outboxes by ``Wire`` and asks each wire for an
``Audience``, so a notice to a thousand members is encoded once per wire format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chatsecure.server.core.notices import EndReason, Notice
from chatsecure.server.core.results import Label, Refusal, Reply


class Audience(Protocol):
    """Many sessions of one wire format, told the same thing at once."""

    def tell(self, notice: Notice, skip: Outbox | None = None) -> None:
        """Encode ``notice`` once and queue it for every member but ``skip``."""


class Wire(Protocol):
    """A wire format, as the hub sees it."""

    def audience(self, outboxes: Sequence[Outbox]) -> Audience:
        """An audience of ``outboxes``, which all have this wire; kept while none changes."""


class Outbox(Protocol):
    """Where the service puts what one session must hear. Never blocks; any thread."""

    @property
    def wire(self) -> Wire: ...

    def reply(self, label: Label, reply: Reply) -> None:
        """The answer to the request tagged ``label``."""

    def refuse(self, label: Label, refusal: Refusal) -> None:
        """The request tagged ``label`` was refused (after the fact, e.g. not stored)."""

    def notify(self, notice: Notice) -> None:
        """Something for this session alone."""

    def end(self, reason: EndReason) -> None:
        """Say goodbye for ``reason`` and close; nothing more is put in afterwards."""

    def unsent_bytes(self) -> int:
        """Bytes queued for the client and not yet sent (a file is sent only so fast)."""
