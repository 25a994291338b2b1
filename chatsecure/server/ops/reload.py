"""SIGHUP: read the configuration and certificate again, and apply what can change live.

Everything is checked before anything changes: a configuration that does not load, a
certificate or key that does not, or a log file that cannot be opened refuses the whole
reload, and the server goes on with what it had. Settings read only at start (the
addresses, the database, the metrics port, the bcrypt pool's size) keep their running
values and are named in the log as needing a restart, rather than seeming applied.

A section is live only when every reader of it reads it at each use (see
``core.live``); a section this module does not list needs a restart, so a new one is
never silently ignored.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatsecure.config import ConfigError, Settings, load_settings
from chatsecure.server.host import ServerHost
from chatsecure.server.ops.logs import LogOutput
from chatsecure.server.transport import (
    TlsSetupError,
    certificate_fingerprint,
    certificate_not_after,
    server_context,
)

log = logging.getLogger(__name__)

# Sections whose new values apply at once (new TLS context and limits: to new
# connections), but for the keys in FIXED.
LIVE_SECTIONS = frozenset(
    {"server", "tls", "auth", "history", "rooms", "limits", "logging", "files"}
)
FIXED = frozenset(
    {
        ("server", "host"),
        ("server", "port"),
        ("auth", "max_concurrent_checks"),
        ("files", "enabled"),
        ("files", "dir"),
    }
)


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a reload does: the settings to run with, what changes, what waits for a restart."""

    settings: Settings
    changed: tuple[str, ...]  # "[limits] max_connections", applied
    needs_restart: tuple[str, ...]  # changed in the file, kept as running


def plan_reload(running: Settings, loaded: Settings) -> ReloadPlan:
    """``loaded`` as far as it can apply to a server running with ``running``."""
    sections: dict[str, Any] = {}
    changed: list[str] = []
    needs_restart: list[str] = []
    for section in (f.name for f in dataclasses.fields(Settings) if f.name != "path"):
        old, new = getattr(running, section), getattr(loaded, section)
        kept: dict[str, Any] = {}
        for key in (f.name for f in dataclasses.fields(old)):
            if getattr(old, key) == getattr(new, key):
                continue
            name = f"[{section}] {key}"
            if section in LIVE_SECTIONS and (section, key) not in FIXED:
                changed.append(name)
            else:
                needs_restart.append(name)
                kept[key] = getattr(old, key)
        sections[section] = dataclasses.replace(new, **kept) if kept else new
    settings = dataclasses.replace(loaded, **sections)
    return ReloadPlan(settings, tuple(changed), tuple(needs_restart))


def reload(host: ServerHost, logs: LogOutput, config: Path | None) -> bool:
    """Reload from ``config`` (None: found as at start, ``$CHATSECURE_CONFIG`` and so on).

    Runs on the main thread, never in the signal handler. Whether it was applied; if
    not, the log says why and everything is as before.
    """
    try:
        plan = plan_reload(host.settings, load_settings(config))
        tls = plan.settings.tls
        context = server_context(tls)
        fingerprint = certificate_fingerprint(tls.cert_file)
        not_after = certificate_not_after(tls.cert_file)
    except (ConfigError, TlsSetupError) as exc:
        return _refused(str(exc))
    try:
        logs.apply(plan.settings.logging)  # the last step that can fail
    except OSError as exc:
        return _refused(f"cannot open the log file {plan.settings.logging.file}: {exc.strerror}")
    host.reconfigure(plan.settings, context, not_after)
    where = plan.settings.path
    log.info(
        "reloaded %s: %s", where, ", ".join(plan.changed) if plan.changed else "no setting changed"
    )
    for name in plan.needs_restart:
        log.warning("%s changed in %s: needs a restart to take effect", name, where)
    days = (not_after - datetime.now(UTC)).total_seconds() / 86400
    log.info(
        "TLS certificate for new connections: SHA-256 fingerprint %s, valid until %s (%.0f days)",
        fingerprint,
        not_after.strftime("%Y-%m-%d %H:%M UTC"),
        days,
    )
    return True


def _refused(why: str) -> bool:
    log.error("reload refused, the server goes on as it was: %s", why)
    return False
