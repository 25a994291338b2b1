"""[cluster] settings: checked when loaded, and refused on SQLite with a reason."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from chatsecure.config import ConfigError, Settings, load_settings

PG = '[database]\nurl = "postgresql+psycopg://chat@db.example.org/chat"\n'


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_the_defaults_are_one_node_on_the_postgres_bus(tmp_path):
    cluster = _load(tmp_path, "").cluster
    assert not cluster.enabled
    assert cluster.bus == "postgres"
    assert cluster.node == platform.node()
    named = _load(tmp_path, PG + '[cluster]\nenabled = true\nnode_name = "chat-2.a"\n').cluster
    assert named.enabled
    assert named.node == "chat-2.a"


def test_clustering_needs_postgresql(tmp_path):
    with pytest.raises(ConfigError, match=r"several nodes need one PostgreSQL database"):
        _load(tmp_path, "[cluster]\nenabled = true\n")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('node_name = "two words"', "is not a node name"),
        ('bus = "kafka"', '"kafka" is not one of "postgres", "redis"'),
        ('redis_url = "http://x"', "is not a Redis URL"),
        ("heartbeat_interval = 5", "must be at least three heartbeat_interval"),
        ("node_timeout = 0.1", "out of range"),
    ],
)
def test_a_bad_cluster_value_names_the_key(tmp_path, line, problem):
    with pytest.raises(ConfigError, match=problem) as caught:
        _load(tmp_path, PG + f"[cluster]\nenabled = true\n{line}\n")
    assert "[cluster]" in str(caught.value)
