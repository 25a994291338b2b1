"""Settings: ``config.toml`` loaded with tomllib into frozen, typed, validated dataclasses.

Every key is declared once, in the section dataclasses below, with its type, default and
range. Loading checks each value against that declaration, so an error can always name
the file, the key and the problem, and an unknown key or section (a typo) is an error
instead of a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_type_hints

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from chatsecure.names import normalize_room

CONFIG_ENV = "CHATSECURE_CONFIG"
DEFAULT_CONFIG_NAME = "config.toml"
# The databases the store runs on, each with the one driver it is installed and tested
# with (``postgresql://`` alone would mean psycopg2, which chatsecure does not install).
SUPPORTED_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, the key and why."""


T = TypeVar("T")


def _ranged(default: T, low: float, high: float) -> T:
    """A field whose value must lie within [low, high]."""
    return field(default=default, metadata={"low": low, "high": high})


def _choice(default: str, *others: str) -> str:
    """A field whose value must be one of the listed strings."""
    return field(default=default, metadata={"choices": (default, *others)})


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = _ranged(5443, 1, 65535)
    # The server thread count grows with connections; this bounds each thread's stack.
    thread_stack_kib: int = _ranged(256, 64, 8192)


@dataclass(frozen=True, slots=True)
class IrcSettings:
    """The IRC listener: TLS only, with the certificate and profile of ``[tls]``."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = _ranged(6697, 1, 65535)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert_file: Path = Path("certs/server.pem")
    key_file: Path = Path("certs/server.key")
    ca_file: Path = Path("certs/ca.pem")
    # "intermediate": TLS 1.2 and 1.3 (Mozilla intermediate); "modern": TLS 1.3 only.
    profile: str = _choice("intermediate", "modern")
    handshake_timeout: float = _ranged(10.0, 0.5, 300)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = "sqlite:///chatsecure.db"
    # SQLite only. NORMAL survives a crash or kill of the server; FULL also power loss.
    synchronous: str = _choice("NORMAL", "FULL")
    # Start even when other users may read the database files or the TLS key.
    allow_shared_files: bool = False
    # The connection pool: kept open, opened beyond that under load, and how long a
    # thread waits for one when all are in use. Each server connection to PostgreSQL
    # counts against its max_connections; an SQLite connection is only an open file.
    pool_size: int = _ranged(8, 1, 1000)
    max_overflow: int = _ranged(8, 0, 10000)
    pool_timeout: float = _ranged(30.0, 0.1, 3600)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    bcrypt_rounds: int = _ranged(12, 10, 16)
    # Per-account throttle: this many failures within the window locks login for the rest of it.
    max_failures: int = _ranged(5, 1, 1000)
    failure_window: int = _ranged(900, 1, 86400)
    # Per-address throttle, higher because several people may share one address.
    max_failures_per_address: int = _ranged(30, 1, 100000)
    # Concurrent bcrypt checks; 0 means one per CPU core.
    max_concurrent_checks: int = _ranged(0, 0, 256)


@dataclass(frozen=True, slots=True)
class HistorySettings:
    on_login: int = _ranged(50, 0, 500)
    # How many most recently active direct-message peers get history on login.
    dm_peers_on_login: int = _ranged(20, 0, 100)
    # Messages older than this many days are deleted (0 keeps them for ever).
    retain_days: int = _ranged(0, 0, 36500)
    # SQLite's search index keeps a deleted message's words until it is compacted: the
    # server does that this many seconds after the first deletion since it last did.
    search_compact_delay: float = _ranged(300.0, 1, 3600)


@dataclass(frozen=True, slots=True)
class RoomsSettings:
    default: tuple[str, ...] = ("general",)
    # Whether users may create rooms (by `create`, or by joining an unknown one);
    # server admins always may.
    users_can_create: bool = True
    # Rooms in all, and rooms one account may create (a join that would create one more
    # is refused): rooms cost every `rooms` request and the admin's attention.
    max_rooms: int = _ranged(1000, 1, 1_000_000)
    max_per_creator: int = _ranged(20, 1, 1_000_000)


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    max_frame_bytes: int = _ranged(65536, 1024, 16 * 1024 * 1024)
    max_text_chars: int = _ranged(4000, 1, 100000)
    login_timeout: float = _ranged(30.0, 1, 3600)
    # A person typing fast sends a few messages a second; a paste burst a few more.
    messages_per_second: float = _ranged(5.0, 0.1, 1_000_000)
    message_burst: int = _ranged(20, 1, 1_000_000)
    max_connections: int = _ranged(1000, 1, 1_000_000)
    max_connections_per_address: int = _ranged(50, 1, 1_000_000)
    # Connections not logged in yet (in the TLS handshake or before login) have a budget
    # of their own, so they cannot take the slots of logged-in users and new logins.
    # Per address, an IPv6 address counts as its /64.
    max_unauthenticated: int = _ranged(256, 1, 1_000_000)
    max_unauthenticated_per_address: int = _ranged(8, 1, 1_000_000)
    # A quiet connection is pinged at half this and dropped at the full time.
    idle_timeout: float = _ranged(300.0, 5, 86400)
    # Unsent bytes queued for one connection before it is dropped as a slow consumer.
    max_queued_bytes: int = _ranged(8 * 1024 * 1024, 65536, 1 << 31)
    # Unsent bytes queued for all connections together; past it, those holding more
    # than a small share (64 KiB) are dropped as slow consumers.
    max_queued_bytes_total: int = _ranged(16 * 1024 * 1024, 1024 * 1024, 1 << 40)
    # A connection whose queue has not emptied for this long is dropped as too slow.
    drain_timeout: float = _ranged(30.0, 1, 3600)
    # Joins and leaves (a join that creates a room included) per account: each tells
    # every member, so they are rate-limited like messages.
    room_changes_per_second: float = _ranged(1.0, 0.01, 1_000_000)
    room_change_burst: int = _ranged(10, 1, 1_000_000)
    # Sessions one account may have open at once (on one server node).
    max_sessions_per_user: int = _ranged(10, 1, 10000)


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Several nodes on one PostgreSQL database, told of each other's news by a bus."""

    enabled: bool = False
    # This node's name among the nodes; empty means the machine's host name.
    node_name: str = ""
    # "postgres": LISTEN/NOTIFY on the database itself; "redis": pub/sub at redis_url.
    bus: str = _choice("postgres", "redis")
    redis_url: str = "redis://127.0.0.1:6379/0"
    # How often a node says it is alive and catches up on what the bus did not tell it.
    heartbeat_interval: float = _ranged(1.0, 0.05, 60)
    # A node not heard from for this long is dead: its users go offline elsewhere.
    node_timeout: float = _ranged(10.0, 0.5, 3600)

    @property
    def node(self) -> str:
        """This node's name: ``node_name``, else the host name."""
        return self.node_name or platform.node()


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = _choice("INFO", "DEBUG", "WARNING", "ERROR")
    # "json": one JSON object per line, for log shippers.
    format: str = _choice("text", "json")
    # None: stderr (the journal under systemd). A file is created 0600; SIGHUP reopens it.
    file: Path | None = None


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Prometheus metrics over plain HTTP; None (the default) serves none."""

    listen: str | None = None  # "HOST:PORT", an IPv6 host in brackets


@dataclass(frozen=True, slots=True)
class FilesSettings:
    """Files shared in conversations: kept under ``dir``, named by their content's SHA-256."""

    enabled: bool = True
    dir: Path = Path("files")
    # The largest file one upload may send, and what one account's live files may add up to.
    max_bytes: int = _ranged(25 * 1024 * 1024, 1, 2**53)
    quota_bytes: int = _ranged(1024 * 1024 * 1024, 1, 2**53)
    # An upload not finished within this many seconds is dropped (its slot and bytes freed).
    upload_timeout: float = _ranged(900.0, 1, 86400)


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings; ``path`` is the file they came from (``None`` for built-in defaults)."""

    path: Path | None = None
    server: ServerSettings = ServerSettings()
    irc: IrcSettings = IrcSettings()
    tls: TlsSettings = TlsSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    history: HistorySettings = HistorySettings()
    rooms: RoomsSettings = RoomsSettings()
    limits: LimitsSettings = LimitsSettings()
    cluster: ClusterSettings = ClusterSettings()
    logging: LoggingSettings = LoggingSettings()
    metrics: MetricsSettings = MetricsSettings()
    files: FilesSettings = FilesSettings()

    @property
    def base_dir(self) -> Path:
        """The folder relative paths resolve against: the config file's own."""
        return self.path.parent if self.path else Path.cwd()


_SECTIONS: dict[str, type[Any]] = {
    f.name: f.default.__class__ for f in dataclasses.fields(Settings) if f.name != "path"
}


def locate_config(explicit: str | os.PathLike[str] | None) -> Path:
    """``--config``, else ``$CHATSECURE_CONFIG``, else ``./config.toml``."""
    chosen = explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME
    return Path(chosen).expanduser().resolve()


def load_settings(explicit: str | os.PathLike[str] | None = None) -> Settings:
    """Find, read and validate the configuration file."""
    path = locate_config(explicit)
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_settings(raw, path)


def parse_settings(raw: Mapping[str, Any], path: Path) -> Settings:
    """Validate an already-parsed TOML document that came from ``path``."""
    sections: dict[str, Any] = {}
    for name, table in raw.items():
        if name not in _SECTIONS:
            known = ", ".join(f"[{s}]" for s in _SECTIONS)
            raise ConfigError(f"{path}: unknown section [{name}] (known: {known})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        sections[name] = _parse_section(_SECTIONS[name], name, table, path)
    settings = Settings(path=path, **sections)
    _check_cluster_database(settings, path)
    return _resolve_paths(settings)


def _parse_section(cls: type[T], section: str, table: dict[str, Any], path: Path) -> T:
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{path}: [{section}] {key}"
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{where}: unknown key (known in [{section}]: {known})")
        checked = _convert(hints[key], value, where)
        _check_metadata(fields[key].metadata, checked, where)
        values[key] = checked
    settings = cls(**values)
    for check in _SECTION_CHECKS.get(section, ()):
        check(settings, f"{path}: [{section}]")
    return settings


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml(value: Any) -> str:
    """``value`` as TOML spells it, for messages about the file: ``true``, ``"text"``,
    ``[1, 2]``, never Python's ``True`` or ``'text'``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON's escapes are TOML's too; TOML also wants DEL escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (
            f"{k if _BARE_KEY.fullmatch(k) else _toml(k)} = {_toml(v)}" for k, v in value.items()
        )
        return "{ " + ", ".join(pairs) + " }" if value else "{}"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)  # numbers: Python's digits, inf and nan are TOML's


def _convert(hint: Any, value: Any, where: str) -> Any:
    optional = [a for a in get_args(hint) if a is not type(None)]
    if len(optional) == 1 and len(get_args(hint)) == 2:  # X | None: TOML never says None
        hint = optional[0]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, not {_toml(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be a whole number, not {_toml(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: must be a number, not {_toml(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: must be a non-empty string, not {_toml(value)}")
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: must be a file path string, not {_toml(value)}")
        return Path(value).expanduser()
    if hint == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: must be a list of strings, not {_toml(value)}")
        return tuple(value)
    raise AssertionError(f"no converter for {hint}")  # a programming error in this module


def _check_metadata(meta: Mapping[str, Any], value: Any, where: str) -> None:
    low, high = meta.get("low"), meta.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{where}: {_toml(value)} is out of range ({low} to {high})")
    choices = meta.get("choices")
    if choices and value not in choices:
        listed = ", ".join(map(_toml, choices))
        raise ConfigError(f"{where}: {_toml(value)} is not one of {listed}")


def _check_rooms(rooms: RoomsSettings, where: str) -> None:
    for name in rooms.default:
        if normalize_room(name) != name:
            raise ConfigError(
                f"{where} default: {_toml(name)} is not a room name "
                "(1-32 of a-z 0-9 _ -, starting with a letter or digit)"
            )


def _check_database(database: DatabaseSettings, where: str) -> None:
    try:
        url = make_url(database.url)
    except ArgumentError as exc:
        raise ConfigError(f"{where} url: not a database URL: {exc}") from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend not in SUPPORTED_DRIVERS:
        raise ConfigError(
            f"{where} url: chatsecure stores on SQLite (sqlite:///FILE) or PostgreSQL "
            f"(postgresql+psycopg://...), not {backend}"
        )
    if driver != SUPPORTED_DRIVERS[backend]:
        raise ConfigError(
            f"{where} url: use the {SUPPORTED_DRIVERS[backend]} driver "
            f"({backend}+{SUPPORTED_DRIVERS[backend]}://...), not {driver}"
        )


NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _check_cluster(cluster: ClusterSettings, where: str) -> None:
    if cluster.node_name and not NODE_NAME.fullmatch(cluster.node_name):
        raise ConfigError(
            f"{where} node_name: {_toml(cluster.node_name)} is not a node name "
            "(1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)"
        )
    if not cluster.redis_url.startswith(REDIS_SCHEMES):
        raise ConfigError(
            f"{where} redis_url: {_toml(cluster.redis_url)} is not a Redis URL "
            "(redis://HOST:PORT/DB, rediss:// for TLS, or unix:///PATH)"
        )
    if cluster.node_timeout < 3 * cluster.heartbeat_interval:
        raise ConfigError(
            f"{where} node_timeout: {cluster.node_timeout} must be at least three "
            f"heartbeat_interval ({cluster.heartbeat_interval}), or one late heartbeat "
            "would make a live node look dead"
        )


def _check_cluster_database(settings: Settings, path: Path) -> None:
    """Nodes share one store, so clustering needs a database server, not an SQLite file."""
    if settings.cluster.enabled and make_url(settings.database.url).get_backend_name() != (
        "postgresql"
    ):
        raise ConfigError(
            f"{path}: [cluster] enabled: several nodes need one PostgreSQL database "
            '([database] url = "postgresql+psycopg://..."); SQLite is the database of '
            "a single node (see docs/cluster.md)"
        )


def _check_host(section: ServerSettings | IrcSettings, where: str) -> None:
    if any(c.isspace() for c in section.host):
        raise ConfigError(f"{where} host: {_toml(section.host)} is not a host name or address")


def _check_metrics(metrics: MetricsSettings, where: str) -> None:
    if metrics.listen is not None:
        try:
            split_address(metrics.listen)
        except ValueError as exc:
            raise ConfigError(f"{where} listen: {exc}") from None


def split_address(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[::1]:PORT"`` for IPv6) as a host and a port; ValueError if not."""
    host, colon, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{_toml(text)} is not HOST:PORT (port 1-65535, [IPv6]:PORT)")
    if any(c.isspace() or c in "[]" for c in host) or (":" in host and not bracketed):
        raise ValueError(f"{_toml(text)}: {_toml(host)} is not a host (an IPv6 address goes in [])")
    return host, int(port)


_SECTION_CHECKS: dict[str, tuple[Callable[[Any, str], None], ...]] = {
    "rooms": (_check_rooms,),
    "database": (_check_database,),
    "server": (_check_host,),
    "irc": (_check_host,),
    "metrics": (_check_metrics,),
    "cluster": (_check_cluster,),
}


def _resolve_paths(settings: Settings) -> Settings:
    """Anchor relative file paths and SQLite URLs at the config file's folder."""
    base = settings.base_dir
    tls = dataclasses.replace(
        settings.tls,
        cert_file=base / settings.tls.cert_file,
        key_file=base / settings.tls.key_file,
        ca_file=base / settings.tls.ca_file,
    )
    database = dataclasses.replace(
        settings.database, url=resolve_database_url(settings.database.url, base)
    )
    log_file = settings.logging.file
    logs = dataclasses.replace(settings.logging, file=log_file and base / log_file)
    files = dataclasses.replace(settings.files, dir=base / settings.files.dir)
    return dataclasses.replace(settings, tls=tls, database=database, logging=logs, files=files)


def resolve_database_url(url: str, base: Path) -> str:
    """A relative SQLite file path becomes absolute against ``base``; other URLs pass."""
    parsed: URL = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return url
    if Path(database).is_absolute():
        return url
    return parsed.set(database=str(base / database)).render_as_string(hide_password=False)


def default_settings() -> Settings:
    """The built-in defaults, with paths relative to the working directory."""
    return _resolve_paths(Settings(path=None))
