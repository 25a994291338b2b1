"""``chatsecure-admin check``: is this machine ready to run the server, and what is off.

Each check is a plain function returning findings, so a test can call one alone.
Nothing here writes to a file or the database; the port check binds and closes at once.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import ipaddress
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from chatsecure.admin.base import missing_driver
from chatsecure.config import Settings, TlsSettings
from chatsecure.storage.backup import SIDE_FILES, sqlite_file
from chatsecure.storage.db import head_revision, schema_problem
from chatsecure.tls_certs import (
    CertificatePaths,
    certificate_names,
    key_matches,
    load_certificate,
    load_private_key,
)

EXPIRY_WARNING_DAYS = 30


class Level(enum.Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    topic: str
    text: str

    def __str__(self) -> str:
        return f"{self.level.value:<4}  {self.topic}: {self.text}"


def run_checks(settings: Settings, now: datetime | None = None) -> list[Finding]:
    """Every check, in the order an admin would fix them."""
    moment = now or datetime.now(UTC)
    return [
        Finding(Level.OK, "config", str(settings.path)),
        *certificate_findings(settings.tls, settings.server.host, moment),
        *mode_findings(_secret_files(settings)),
        schema_finding(settings),
        port_finding(settings.server.host, settings.server.port),
    ]


def certificate_findings(tls: TlsSettings, host: str, now: datetime) -> Iterator[Finding]:
    """The certificate and key load and match; days to expiry; the names it covers."""
    try:
        cert = load_certificate(tls.cert_file)
        key = load_private_key(tls.key_file)
    except FileNotFoundError as exc:
        yield Finding(
            Level.FAIL,
            "certificate",
            f"{exc.filename}: not found; make a development one with: chatsecure-admin gencert",
        )
        return
    except (OSError, ValueError) as exc:
        yield Finding(Level.FAIL, "certificate", _reason(exc))
        return
    if not key_matches(cert, key):
        yield Finding(
            Level.FAIL, "certificate", f"{tls.key_file} is not the key of {tls.cert_file}"
        )
        return
    yield Finding(Level.OK, "certificate", f"{tls.cert_file} matches {tls.key_file}")
    yield _expiry_finding(cert.not_valid_before_utc, cert.not_valid_after_utc, now)
    yield _hostname_finding(certificate_names(cert), host)


def _expiry_finding(start: datetime, end: datetime, now: datetime) -> Finding:
    if now < start:
        return Finding(Level.FAIL, "expiry", f"not valid before {start:%Y-%m-%d %H:%M} UTC")
    days = (end - now).days
    until = f"{end:%Y-%m-%d}"
    if now >= end:
        return Finding(Level.FAIL, "expiry", f"expired on {until}; renew it")
    if days < EXPIRY_WARNING_DAYS:
        return Finding(
            Level.WARN,
            "expiry",
            f"expires in {days} days ({until}); renew it "
            "(a gencert one with: chatsecure-admin gencert --force)",
        )
    return Finding(Level.OK, "expiry", f"{days} days left (until {until})")


def _hostname_finding(names: list[str], host: str) -> Finding:
    shown = ", ".join(names) or "none"
    if _is_unspecified(host):
        return Finding(
            Level.OK, "hostnames", f"[server] host {host} is every address; certificate: {shown}"
        )
    if any(_name_covers(name, host) for name in names):
        return Finding(Level.OK, "hostnames", f"[server] host {host} is among {shown}")
    return Finding(
        Level.WARN,
        "hostnames",
        f"[server] host {host} is not among the certificate's names ({shown}): clients "
        f"that connect to {host} will not verify the server",
    )


def _is_unspecified(host: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_unspecified
    return False


def _name_covers(name: str, host: str) -> bool:
    """Whether a certificate name (perhaps ``*.example.org``) matches ``host``."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name) == ipaddress.ip_address(host)
    name, host = name.lower(), host.lower().rstrip(".")
    if name.startswith("*."):
        return host.partition(".")[2] == name[2:]
    return name == host


def _secret_files(settings: Settings) -> list[Path]:
    """The private keys and the database files (with the WAL: recent messages)."""
    tls = settings.tls
    ca_key = CertificatePaths.beside_ca(tls.cert_file, tls.key_file, tls.ca_file).ca_key_file
    files = [tls.key_file, ca_key]
    database = sqlite_file(settings.database.url)
    if database is not None:
        files += [database, *(Path(f"{database}{suffix}") for suffix in SIDE_FILES)]
    return [path for path in files if path.exists()]


def mode_findings(paths: list[Path]) -> Iterator[Finding]:
    """Secrets are for their owner: any access for others fails, for the group warns."""
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        shown = f"{path} is {mode:04o}"
        if mode & 0o007:
            yield Finding(Level.FAIL, "file mode", f"{shown}: open to every user; chmod 600 it")
        elif mode & 0o070:
            yield Finding(Level.WARN, "file mode", f"{shown}: open to its group")
        else:
            yield Finding(Level.OK, "file mode", shown)


def schema_finding(settings: Settings) -> Finding:
    url = make_url(settings.database.url)
    try:
        # A plain engine: make_engine would create a missing database's folder.
        engine = create_engine(url)
    except ImportError as exc:
        shown = url.render_as_string(hide_password=True)
        return Finding(Level.FAIL, "schema", missing_driver(shown, exc))
    try:
        problem = schema_problem(engine)
    except SQLAlchemyError as exc:
        problem = f"cannot open the database: {getattr(exc, 'orig', None) or exc}"
    finally:
        engine.dispose()
    if problem:
        return Finding(Level.FAIL, "schema", problem)
    return Finding(Level.OK, "schema", f"{head_revision()} (current)")


def port_finding(host: str, port: int) -> Finding:
    """Whether the server could listen: free, in use (a server runs?), or impossible."""
    where = f"port {port} on {host}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return Finding(Level.FAIL, "port", f"cannot resolve {host}: {exc.strerror}")
    errors: list[OSError] = []
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                errors.append(exc)
    if any(exc.errno == errno.EADDRINUSE for exc in errors):
        return Finding(
            Level.WARN, "port", f"{where} is in use: a server listens there (chatsecure-server?)"
        )
    if len(errors) == len(infos):
        return Finding(Level.FAIL, "port", f"cannot listen on {where}: {errors[-1].strerror}")
    return Finding(Level.OK, "port", f"{where} is free")


def _reason(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError):
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)
