"""A running server: the chat core and the listener, started and stopped together.

``chatsecure-server`` runs one; the server console runs one per Start. A listener and a
core each live once (their threads cannot be restarted), so a Start after a Stop builds
new ones over the same settings, database engine and TLS context. An observer, such as
the console, only watches: the server behaves the same with or without one.
"""

from __future__ import annotations

import ssl

from sqlalchemy import Engine

from chatsecure.config import Settings
from chatsecure.server.core import events
from chatsecure.server.core.chat import ChatCore
from chatsecure.server.transport import Listener
from chatsecure.storage.store import Store


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ServerHost:
    """Start, stop and the two admin actions; ``observer``, if any, sees every core event."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        context: ssl.SSLContext,
        observer: events.Observer | None = None,
    ) -> None:
        self.settings = settings
        self.store = Store(engine)
        self._context = context
        self._observer = observer
        self._core: ChatCore | None = None
        self._listener: Listener | None = None

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> list[str]:
        """Serve; where we listen. Raises ``OSError`` when the address cannot be bound."""
        if self._listener is not None:
            raise RuntimeError("the server is already running")
        core = ChatCore(self.settings, self.store)
        if self._observer is not None:
            core.subscribe(self._observer)  # before start, so the first event is seen
        core.start()
        listener = Listener(self.settings, self._context, core)
        try:
            listener.start()
        except OSError:
            core.shutdown()
            raise
        self._core, self._listener = core, listener
        return [format_address(host, port) for host, port in listener.addresses]

    def stop(self) -> None:
        """The graceful stop SIGTERM gives: stop accepting, ``bye`` everyone, flush, close.

        Blocks for up to the listener's grace period, so a window calls it off its thread.
        """
        core, listener = self._core, self._listener
        if core is None or listener is None:
            return
        listener.stop()
        if self._observer is not None:
            core.unsubscribe(self._observer)
        self._core = self._listener = None

    def disconnect(self, session_id: int) -> bool:
        """End one session with ``bye`` ``kicked``; False if it is gone or we are stopped."""
        core = self._core
        return core is not None and core.disconnect(session_id)

    def disable_account(self, name: str) -> None:
        """As ``chatsecure-admin disable``; while running, its sessions end at once."""
        core = self._core
        if core is None:
            self.store.set_disabled(name, True)
        else:
            core.disable_account(name)
