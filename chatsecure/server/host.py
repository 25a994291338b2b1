"""A running server: the chat service, its hub and store, the wire adapters and listeners.

Start and stop are ordered here and nowhere else. Stopping: the listeners stop
accepting, the service stores what is queued and says goodbye (``shutdown``) to every
session through its adapter, the writers drain and close the connections, and the store
closes. ``chatsecure-server`` runs one host; the server console runs one per Start. A
service and a listener each live once (their threads cannot be restarted), so a Start
after a Stop builds new ones over the same settings, database engine and TLS context.
An observer, such as the console, only watches: the server behaves the same without one.
``reconfigure`` applies reloaded settings and a new TLS context while the host runs, and
``stats`` is what metrics and status read of it.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from chatsecure.config import Settings
from chatsecure.server.cluster import ClusterHub
from chatsecure.server.core import events
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.service import ChatService
from chatsecure.server.irc import IrcWire
from chatsecure.server.json import JsonWire
from chatsecure.server.transport import Listener, certificate_not_after, format_address
from chatsecure.server.transport.budget import QueueBudget
from chatsecure.storage.store import Store


@dataclass(frozen=True, slots=True)
class HostStats:
    """A running host at one moment, for metrics and ``chatsecure-admin status``."""

    started_at: float  # wall-clock seconds since the epoch
    connections: int  # open, logged in or not (in the TLS handshake included)
    sessions_logged_in: int
    users_online: int  # accounts with at least one session
    message_backlog: int  # sent, waiting for the message writer
    queued_bytes: int  # queued to clients, not yet sent
    slow_consumer_drops: int  # since start
    certificate_not_after: datetime


def _irc_settings(settings: Settings) -> Settings:
    """The IRC listener's view: the main one's settings at the IRC address."""
    irc = settings.irc
    at_irc = dataclasses.replace(settings.server, host=irc.host, port=irc.port)
    return dataclasses.replace(settings, server=at_irc)


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
        self._not_after = certificate_not_after(settings.tls.cert_file)
        self._observer = observer
        self._service: ChatService | None = None
        self._hub: Hub | None = None
        self._cluster: ClusterHub | None = None  # with [cluster] enabled: this node's hub
        self._listeners: list[Listener] = []
        self._budget = QueueBudget(self.settings.limits.max_queued_bytes_total)
        self._started_at = 0.0

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
        hub = cluster or Hub()
        service = ChatService(self.settings, self.store, hub)
        if self._observer is not None:
            service.observers.subscribe(self._observer)  # before start: see the first event
        service.start()
        # Each listener, and how the banner marks its addresses.
        budget = self._budget  # one for all ports
        listeners = [(Listener(self.settings, self._context, JsonWire(service), budget), "")]
        irc = self.settings.irc
        if irc.enabled:
            irc_listener = Listener(
                _irc_settings(self.settings), self._context, IrcWire(service), budget
            )
            listeners.append((irc_listener, " (IRC)"))
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
        self._service, self._listeners, self._hub = service, started, hub
        self._cluster = cluster
        self._started_at = time.time()
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
        self._service, self._listeners, self._hub, self._cluster = None, [], None, None
        self.store.close()

    def reconfigure(self, settings: Settings, context: ssl.SSLContext, not_after: datetime) -> None:
        """Serve new connections with ``context``, and apply ``settings`` from now on.

        ``not_after`` is when the context's certificate expires. Sessions already open
        stay up on the TLS session they have. ``settings`` must keep what only a start
        reads (the addresses, the database): see ``ops.reload``.
        """
        self.settings, self._context, self._not_after = settings, context, not_after
        self._budget.limit = settings.limits.max_queued_bytes_total
        service = self._service
        if service is None:
            return
        service.reconfigure(settings)
        views = [settings, _irc_settings(settings)]  # the order start() made them in
        for listener, view in zip(self._listeners, views, strict=False):
            listener.reconfigure(view, context)

    def stats(self) -> HostStats | None:
        """What the running host holds now; None while it is stopped."""
        service, listeners, hub = self._service, self._listeners, self._hub
        if service is None or hub is None:
            return None
        sessions = hub.sessions()
        return HostStats(
            started_at=self._started_at,
            connections=sum(listener.connection_count() for listener in listeners),
            sessions_logged_in=sum(1 for session in sessions if session.account is not None),
            users_online=len(hub.online_accounts()),
            message_backlog=service.messages.backlog(),
            queued_bytes=self._budget.total,
            slow_consumer_drops=sum(listener.slow_consumer_drops() for listener in listeners),
            certificate_not_after=self._not_after,
        )

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
