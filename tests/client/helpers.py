"""Driving a ``ChatSession`` without a window: poll until an update shows up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chatsecure.client.network import Credentials, ServerAddress
from chatsecure.client.session import ChatSession, Update
from chatsecure.client.state import Line
from chatsecure.client.trust import TrustStore
from tests.client.server import ServerProcess
from tests.serverproc import HOST, password_of

TIMEOUT = 15.0


class Driver:
    """A session plus everything it has reported so far."""

    def __init__(self, session: ChatSession) -> None:
        self.session = session
        self.updates: list[Update] = []

    def wait(self, kind: type | tuple[type, ...], timeout: float = TIMEOUT, **fields: Any) -> Any:
        """The first new update of ``kind`` with ``fields``, polling until it arrives."""
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            for update in self.updates[seen:]:
                if isinstance(update, kind) and all(
                    getattr(update, k, None) == v for k, v in fields.items()
                ):
                    self.updates.remove(update)
                    return update
            seen = len(self.updates)
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} {fields} within {timeout}s: {self.updates}")
            self.updates.extend(self.session.poll())
            time.sleep(0.01)

    def wait_line(self, text: str, timeout: float = TIMEOUT) -> Line:
        """The message line reading ``text`` once it has arrived in any conversation."""
        found: list[Line] = []

        def arrived() -> bool:
            state = self.session.state
            found[:] = [
                line
                for conv in (state.conversations.values() if state else ())
                for line in conv.lines
                if line.id is not None and line.text == text
            ]
            return bool(found)

        self.until(arrived, timeout)
        return found[0]

    def until(self, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s: {self.updates}")
            self.updates.extend(self.session.poll())
            time.sleep(0.01)


def session_for(
    server: ServerProcess,
    user: str,
    *,
    password: str | None = None,
    ca: bool = True,
    trust: TrustStore | None = None,
) -> Driver:
    """A started session for ``user`` (verifying with the server's CA unless ``ca=False``)."""
    address = ServerAddress(HOST, server.port, server.certs.ca if ca else None)
    creds = Credentials(user, password if password is not None else password_of(user))
    session = ChatSession(address, creds, trust or TrustStore())
    session.start()
    return Driver(session)
