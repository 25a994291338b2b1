"""``chatsecure-server``: load settings, check the database, start the server host, serve.

Every start-up problem an admin can fix (configuration, certificate, schema, files that
other users can read, address in use) ends in one line on stderr and a non-zero exit,
not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import stat
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from chatsecure.config import ConfigError, Settings, load_settings
from chatsecure.package import version_text
from chatsecure.server.host import ServerHost
from chatsecure.server.memory import limit_malloc_arenas
from chatsecure.server.transport import (
    TlsSetupError,
    certificate_fingerprint,
    format_address,
    server_context,
    tls_versions,
)
from chatsecure.storage.db import database_files, make_engine, schema_problem

log = logging.getLogger("chatsecure.server")

EXIT_OK = 0
EXIT_RUNTIME = 1  # could not listen, or crashed
EXIT_SETUP = 2  # configuration, certificate or database needs the admin's attention
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the server in the foreground until SIGINT or SIGTERM; the exit status."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="chatsecure-server", description="Run the chatsecure TLS chat server."
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $CHATSECURE_CONFIG, then ./config.toml)",
    )
    parser.add_argument(
        "--gui", action="store_true", help="open the server console window to run and watch it"
    )
    parser.add_argument("--version", action="version", version=version_text("chatsecure-server"))
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"chatsecure-server: {exc}", file=sys.stderr)
        return EXIT_SETUP
    configure_logging(settings.logging.level)
    limit_malloc_arenas()

    database = settings.database
    engine = make_engine(
        database.url,
        database.synchronous,
        pool_size=database.pool_size,
        max_overflow=database.max_overflow,
        pool_timeout=database.pool_timeout,
    )
    try:
        problem = schema_problem(engine)
        if problem:
            print(f"chatsecure-server: {problem}", file=sys.stderr)
            return EXIT_SETUP
        context = server_context(settings.tls)
        fingerprint = certificate_fingerprint(settings.tls.cert_file)
    except SQLAlchemyError as exc:
        print(f"chatsecure-server: cannot open the database: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except TlsSetupError as exc:
        print(f"chatsecure-server: {exc}", file=sys.stderr)
        return EXIT_SETUP
    problem = shared_files_problem(settings)
    if problem:
        print(f"chatsecure-server: {problem}", file=sys.stderr)
        return EXIT_SETUP

    # Before the server starts: a signal that comes once it listens must stop it gracefully.
    stop = threading.Event()
    install_signal_handlers(stop)
    if args.gui:
        # Imported here so a headless server never needs tkinter.
        from chatsecure.server.console.window import run_console  # noqa: PLC0415

        opened = run_console(settings, engine, context, fingerprint, stop)
        engine.dispose()
        return EXIT_OK if opened else EXIT_SETUP

    host = ServerHost(settings, engine, context)
    try:
        addresses = host.start()
    except OSError as exc:
        where = format_address(settings.server.host, settings.server.port)
        print(f"chatsecure-server: cannot listen on {where}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    print_banner(out, settings, addresses, fingerprint)
    while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
        pass
    log.info("shutting down")
    host.stop()
    log.info("stopped")
    return EXIT_OK


# Any permission for the group or others: what OpenSSH refuses on a private key.
SHARED_BITS = 0o077


def shared_files_problem(settings: Settings) -> str | None:
    """Which secret file other users may read or change (and how to fix it), or None.

    The database holds password hashes and every message; the key is the server's identity.
    """
    if settings.database.allow_shared_files:
        return None
    database = database_files(settings.database.url)
    for path in [*database, settings.tls.key_file]:
        mode = _mode(path)
        if mode is None or not mode & SHARED_BITS:
            continue
        fix = "chatsecure-admin migrate" if path in database else f"chmod 600 {path}"
        return (
            f"{path} is open to other users (mode {mode:04o}); make it private with: "
            f"{fix} (or set [database] allow_shared_files = true to start anyway)"
        )
    return None


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:  # e.g. a -wal file SQLite removed meanwhile
        return None


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    # Alembic narrates every schema check at INFO; only its problems matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def print_banner(
    out: TextIO, settings: Settings, addresses: Sequence[str], fingerprint: str
) -> None:
    """What an admin needs to point clients at us; no secrets (the DB password is hidden)."""
    for address in addresses:
        print(f"chatsecure-server listening on {address}", file=out)
    print(f"TLS: {tls_versions(settings.tls.profile)} ({settings.tls.profile} profile)", file=out)
    print(f"certificate SHA-256 fingerprint: {fingerprint}", file=out)
    database = make_url(settings.database.url).render_as_string(hide_password=True)
    print(f"database: {database}", file=out)
    print("press Ctrl-C to stop", file=out, flush=True)


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGINT/SIGTERM ask for a graceful stop; a second one kills at once."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


if __name__ == "__main__":
    sys.exit(main())
