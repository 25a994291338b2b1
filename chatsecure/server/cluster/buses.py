"""The bus the settings name, and the channel the nodes of one cluster share."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from chatsecure.config import ClusterSettings
from chatsecure.server.cluster.bus import Bus


def channel_name(engine: Engine) -> str:
    """One channel per database, so clusters on separate databases share a Redis safely."""
    return f"chatsecure.{make_url(engine.url).database}"


def make_bus(settings: ClusterSettings, engine: Engine) -> Bus:
    """The bus ``settings`` name, imported only when chosen."""
    if settings.bus == "redis":
        from chatsecure.server.cluster.redisbus import RedisBus  # noqa: PLC0415

        return RedisBus(settings.redis_url, channel_name(engine), settings.node)
    from chatsecure.server.cluster.pgbus import PostgresBus  # noqa: PLC0415

    return PostgresBus(engine, channel_name(engine), settings.node)
