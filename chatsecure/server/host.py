"""A running server: the chat service, its hub and store, the wire adapters and listeners.

Start and stop are ordered here and nowhere else. Stopping: the listeners stop
accepting, the service stores what is queued and says goodbye (``shutdown``) to every
session through its adapter, the writers drain and close the connections, and the store
closes. ``chatsecure-server`` runs one host; the server console runs one per Start. A
service and a listener each live once (their threads cannot be restarted), so a Start
after a Stop builds new ones over the same settings, database engine and TLS context.
An observer, such as the console, only watches: the server behaves the same without one.
"""

from __future__ import annotations

import dataclasses
import ssl

from sqlalchemy import Engine

from chatsecure.config import Settings
from chatsecure.server.cluster import ClusterHub
from chatsecure.server.core import events
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.service import ChatService
from chatsecure.server.irc import IrcWire
from chatsecure.server.json import JsonWire
from chatsecure.server.transport import Listener, format_address
from chatsecure.storage.store import Store


class ServerHost:
    """Start, stop and the two admin actions; ``observer``, if any, sees every service event."""

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
        self._service: ChatService | None = None
        self._cluster: ClusterHub | None = None  # with [cluster] enabled: this node's hub
        self._listeners: list[Listener] = []

    @property
    def running(self) -> bool:
        return self._service is not None

    def start(self) -> list[str]:
        """Serve; where we listen (IRC last, marked). Raises ``OSError`` when an address
        cannot be bound."""
        if self._service is not None:
            raise RuntimeError("the server is already running")
        cluster = ClusterHub(self.settings, self.store) if self.settings.cluster.enabled else None
        if cluster is not None:
            cluster.start()
        service = ChatService(self.settings, self.store, cluster or Hub())
        if self._observer is not None:
            service.observers.subscribe(self._observer)  # before start: see the first event
        service.start()
        # Each listener, and how the banner marks its addresses.
        listeners = [(Listener(self.settings, self._context, JsonWire(service)), "")]
        irc = self.settings.irc
        if irc.enabled:
            # The IRC listener is the main one on another address, with the IRC wire.
            at_irc = dataclasses.replace(self.settings.server, host=irc.host, port=irc.port)
            irc_settings = dataclasses.replace(self.settings, server=at_irc)
            listeners.append((Listener(irc_settings, self._context, IrcWire(service)), " (IRC)"))
        started: list[Listener] = []
        try:
            for listener, _mark in listeners:
                listener.start()
                started.append(listener)
        except OSError as exc:
            for listener in started:
                listener.stop_accepting()
            service.shutdown()
            if cluster is not None:
                cluster.stop()
            for listener in started:
                listener.close()
            if started:  # the main port is fine, so the IRC port failed: say so
                where = format_address(irc.host, irc.port)
                raise OSError(exc.errno, f"IRC port {where}: {exc.strerror}") from exc
            raise
        self._service, self._listeners, self._cluster = service, started, cluster
        return [
            f"{format_address(host, port)}{mark}"
            for listener, mark in listeners
            for host, port in listener.addresses
        ]

    def stop(self) -> None:
        """The graceful stop SIGTERM gives: stop accepting, goodbye to all, flush, close.

        Blocks for up to the listeners' grace period, so a window calls it off its thread.
        """
        service, listeners = self._service, self._listeners
        if service is None:
            return
        for listener in listeners:
            listener.stop_accepting()
        service.shutdown()
        if self._cluster is not None:
            self._cluster.stop()  # after the sessions' ends, so the other nodes hear of them
        for listener in listeners:
            listener.close()
        if self._observer is not None:
            service.observers.unsubscribe(self._observer)
        self._service, self._listeners, self._cluster = None, [], None
        self.store.close()

    def disconnect(self, session_id: int) -> bool:
        """End one session with ``kicked``; False if it is gone or we are stopped."""
        service = self._service
        return service is not None and service.sessions.disconnect(session_id)

    def disable_account(self, name: str) -> None:
        """As ``chatsecure-admin disable``; while running, its sessions end at once."""
        service = self._service
        if service is None:
            self.store.set_disabled(name, True)
        else:
            service.sessions.disable_account(name)
