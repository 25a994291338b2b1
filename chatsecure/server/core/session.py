"""One client connection inside the core: its protocol state, account and timers.

The transport calls ``receive`` from the connection's reader thread; everything the
session says goes out through its ``Outbox``. Requests are handled one at a time in
arrival order (a login is answered before anything pipelined behind it is read).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from chatsecure.protocol import (
    Bye,
    ByeReason,
    Error,
    ErrorCode,
    LocalProtocolError,
    ServerFrame,
)
from chatsecure.protocol.server import ConnectionState, ServerConnection, Violation
from chatsecure.server.core.outbox import Outbox
from chatsecure.storage.store import AccountRecord

if TYPE_CHECKING:
    from chatsecure.server.core.chat import ChatCore

log = logging.getLogger(__name__)


class Session:
    def __init__(
        self, core: ChatCore, session_id: int, outbox: Outbox, address: str, now: float
    ) -> None:
        self._core = core
        self.id = session_id
        self.outbox = outbox
        self.address = address
        self.connection = ServerConnection(
            core.settings.limits.max_frame_bytes, core.settings.limits.max_text_chars
        )
        self.account: AccountRecord | None = None
        self.opened_at = now
        self.last_heard = now
        self.pinged = False
        self._ended = False
        self._end_lock = threading.Lock()

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

    def _claim_end(self) -> bool:
        """True for exactly one caller, whichever thread ends the session first."""
        with self._end_lock:
            first, self._ended = not self._ended, True
            return first

    def receive(self, data: bytes) -> None:
        self.last_heard = self._core.clock()
        self.pinged = False
        self.connection.receive_data(data)
        while not self.ended and (event := self.connection.next_event()) is not None:
            if isinstance(event, Violation):
                self.reply(event.error)
                if event.close is not None:
                    self.end(event.close)
                continue
            try:
                self._core.handle(self, event)
            except Exception:
                log.exception("request %s from %s failed", type(event).__name__, self.user)
                self.reply(
                    Error(
                        code=ErrorCode.SERVER_ERROR,
                        message="the server could not complete the request",
                        req=event.req,
                    )
                )

    def reply(self, frame: ServerFrame) -> None:
        """Send a frame to this connection alone (dropped once the session has ended)."""
        if self._ended:
            return
        try:
            data = self.connection.send(frame)
        except LocalProtocolError:
            if self.ended:  # lost a race with end() in another thread
                return
            raise
        self.outbox.send(data)

    def end(self, reason: ByeReason) -> None:
        """Say ``bye`` with ``reason`` and close; only the first call does anything."""
        if not self._claim_end():
            return
        if self.connection.state is not ConnectionState.CLOSED:
            self.outbox.send(self.connection.send(Bye(reason=reason)))
        self.outbox.close()
        self._core.session_ended(self, reason)

    def connection_lost(self) -> None:
        if not self._claim_end():
            return
        self.connection.close()
        self._core.session_ended(self, None)
