"""One client's session as the chat service sees it: who, since when, and its outbox.

A session is data: the service's parts read and set it, and speak to the client only
through ``outbox``. Which wire format the client speaks is the outbox's business.
"""

from __future__ import annotations

import threading

from chatsecure.server.core.outbox import Outbox
from chatsecure.storage.store import AccountRecord


class Session:
    __slots__ = (
        "_end_lock",
        "_ended",
        "account",
        "address",
        "changing_password",
        "id",
        "last_heard",
        "opened_at",
        "outbox",
        "pinged",
    )

    def __init__(self, session_id: int, address: str, outbox: Outbox, now: float) -> None:
        self.id = session_id
        self.address = address
        self.outbox = outbox
        self.account: AccountRecord | None = None  # set once, by a successful login
        self.opened_at = now
        self.last_heard = now
        self.pinged = False  # asked for a sign of life since it was last heard
        # Its own passwd is being stored: the new generation is not yet its own, so
        # the check for stale sessions must not end it meanwhile.
        self.changing_password = False
        self._ended = False
        self._end_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.user} from {self.address}>"

    @property
    def account_id(self) -> int:
        assert self.account is not None, "only logged-in sessions have an account"
        return self.account.id

    @property
    def user(self) -> str:
        return self.account.name if self.account else "-"

    @property
    def ended(self) -> bool:
        return self._ended

    def claim_end(self) -> bool:
        """True for exactly one caller, whichever thread ends the session first."""
        with self._end_lock:
            first, self._ended = not self._ended, True
            return first
