"""Which reloaded settings apply live and which keep their running value until a restart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from chatsecure.config import Settings, parse_settings
from chatsecure.server.ops.reload import FIXED, LIVE_SECTIONS, plan_reload


def _settings(tmp_path: Path, **sections: dict[str, object]) -> Settings:
    return parse_settings(sections, tmp_path / "config.toml")


def test_live_settings_apply_and_start_only_ones_keep_their_running_value(tmp_path):
    running = _settings(tmp_path)
    loaded = _settings(
        tmp_path,
        server={"port": 6000, "thread_stack_kib": 512},
        limits={"max_connections": 7},
        auth={"max_failures": 3, "max_concurrent_checks": 2},
        database={"url": "sqlite:////elsewhere.db"},
        metrics={"listen": "127.0.0.1:9464"},
        logging={"format": "json"},
    )
    plan = plan_reload(running, loaded)
    assert set(plan.changed) == {
        "[server] thread_stack_kib",
        "[limits] max_connections",
        "[auth] max_failures",
        "[logging] format",
    }
    assert set(plan.needs_restart) == {
        "[server] port",
        "[auth] max_concurrent_checks",
        "[database] url",
        "[metrics] listen",
    }
    applied = plan.settings
    assert applied.limits.max_connections == 7
    assert applied.auth.max_failures == 3
    assert applied.logging.format == "json"
    assert applied.server == dataclasses.replace(running.server, thread_stack_kib=512)
    assert applied.auth.max_concurrent_checks == running.auth.max_concurrent_checks
    assert applied.database == running.database
    assert applied.metrics == running.metrics


def test_an_unchanged_file_changes_nothing(tmp_path):
    plan = plan_reload(_settings(tmp_path), _settings(tmp_path))
    assert plan.changed == plan.needs_restart == ()


def test_a_section_not_known_to_be_live_needs_a_restart():
    """A section added later is safe by default: listed as needing a restart."""
    every = {f.name for f in dataclasses.fields(Settings)} - {"path"}
    assert every - LIVE_SECTIONS == {"irc", "database", "metrics", "cluster"}
    assert {("files", "dir"), ("files", "enabled")} <= FIXED
