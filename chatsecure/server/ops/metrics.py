"""Prometheus metrics, served over HTTP with ``prometheus_client`` at ``[metrics] listen``.

What happens (connections, logins, stored messages and batches) is counted from the
service's events, so the core knows nothing of Prometheus; what is (open connections,
logged-in users, the writer's backlog, queued bytes, the certificate's remaining time)
is read from the host at each scrape. No metric carries a user name or an address.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chatsecure.config import split_address
from chatsecure.package import version
from chatsecure.server.core import events
from chatsecure.server.host import HostStats

# The writer's batches are powers of two up to 512 (docs/architecture.md).
BATCH_BUCKETS = tuple(float(2**n) for n in range(10))

Stats = Callable[[], HostStats | None]


class _HostCollector(Collector):
    """The host's state, read when Prometheus asks."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "chatsecure_info", "The chatsecure server's version", labels=["version"]
        )
        info.add_metric([version()], 1)
        yield info
        stats = self._stats()
        if stats is None:
            return
        gauges = {
            "chatsecure_start_time_seconds": (
                "When the server started (Unix time)",
                stats.started_at,
            ),
            "chatsecure_open_connections": ("Open client connections", stats.connections),
            "chatsecure_sessions_logged_in": ("Sessions logged in", stats.sessions_logged_in),
            "chatsecure_users_online": ("Accounts with a session", stats.users_online),
            "chatsecure_message_queue_depth": (
                "Messages waiting for the message writer",
                stats.message_backlog,
            ),
            "chatsecure_queued_bytes": (
                "Bytes queued to clients, not yet sent",
                stats.queued_bytes,
            ),
            "chatsecure_certificate_expiry_seconds": (
                "Seconds until the TLS certificate of new connections expires",
                stats.certificate_not_after.timestamp() - time.time(),
            ),
        }
        for name, (documentation, value) in gauges.items():
            yield GaugeMetricFamily(name, documentation, value=value)
        yield CounterMetricFamily(
            "chatsecure_slow_consumer_drops",
            "Connections dropped for not reading their frames",
            value=stats.slow_consumer_drops,
        )


class Metrics:
    """Counts service events; ``serve`` adds the host's state and the HTTP endpoint."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._connections = Counter(
            "chatsecure_connections", "Connections that reached a session", registry=self.registry
        )
        self._logins = Counter(
            "chatsecure_logins",
            "Login attempts by outcome: ok, failed or throttled",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("ok", "failed", "throttled"):
            self._logins.labels(outcome)  # every outcome shows from the start, at 0
        self._stored = Counter(
            "chatsecure_messages_stored", "Messages stored", registry=self.registry
        )
        self._batches = Histogram(
            "chatsecure_message_batch_size",
            "Messages the message writer stored per batch",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def observe(self, event: events.ServerEvent) -> None:
        """A ``ServerHost`` observer: runs on core threads, so it only counts."""
        match event:
            case events.Connected():
                self._connections.inc()
            case events.LoggedIn():
                self._logins.labels("ok").inc()
            case events.LoginRefused(throttled=throttled):
                self._logins.labels("throttled" if throttled else "failed").inc()
            case events.MessageStored():
                self._stored.inc()
            case events.BatchStored(size=size):
                self._batches.observe(size)

    def serve(self, listen: str, stats: Stats) -> None:
        """Serve ``/metrics`` on ``listen`` (``HOST:PORT``); OSError if it cannot bind."""
        self.registry.register(_HostCollector(stats))
        host, port = split_address(listen)
        self._server, self._thread = start_http_server(port, host, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
