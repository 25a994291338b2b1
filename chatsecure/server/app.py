"""``chatsecure-server``: load settings, check the database, start the server host, serve.

Every start-up problem an admin can fix (configuration, certificate, schema, files that
other users can read, address in use) ends in one line on stderr and a non-zero exit,
not a traceback.

Signals only queue a request; the main thread acts on it: SIGINT and SIGTERM stop the
server gracefully (a second one at once), SIGHUP reloads it (``ops.reload``). systemd
hears ``READY=1`` once it listens, around each reload, and ``STOPPING=1``.
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import ssl
import stat
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from chatsecure.config import ConfigError, Settings, load_settings
from chatsecure.package import version, version_text
from chatsecure.server.host import ServerHost
from chatsecure.server.memory import limit_malloc_arenas
from chatsecure.server.ops import notify
from chatsecure.server.ops.logs import LogOutput, install_log_output
from chatsecure.server.ops.metrics import Metrics
from chatsecure.server.ops.reload import reload
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
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Requests = queue.SimpleQueue[signal.Signals]


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the server in the foreground until SIGINT or SIGTERM, reloading on SIGHUP."""
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
    limit_malloc_arenas()
    try:
        logs = install_log_output(settings.logging)
    except OSError as exc:
        where = settings.logging.file
        print(f"chatsecure-server: cannot open the log file {where}: {exc}", file=sys.stderr)
        return EXIT_SETUP

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
    requests: Requests = queue.SimpleQueue()
    if args.gui:
        install_signal_handlers(requests, STOP_SIGNALS)
        # Imported here so a headless server never needs tkinter.
        from chatsecure.server.console.window import run_console  # noqa: PLC0415

        stop = threading.Event()

        def stop_on_signal() -> None:
            requests.get()
            stop.set()

        threading.Thread(target=stop_on_signal, name="stop-signal", daemon=True).start()
        opened = run_console(settings, engine, context, fingerprint, stop)
        engine.dispose()
        return EXIT_OK if opened else EXIT_SETUP
    install_signal_handlers(requests, (*STOP_SIGNALS, signal.SIGHUP))
    return serve(
        settings,
        engine,
        context,
        fingerprint=fingerprint,
        requests=requests,
        logs=logs,
        out=out,
    )


def serve(
    settings: Settings,
    engine: Engine,
    context: ssl.SSLContext,
    *,
    fingerprint: str,
    requests: Requests,
    logs: LogOutput,
    out: TextIO,
) -> int:
    """Start a host, then act on the signals queued on ``requests`` until one stops it."""
    listen = settings.metrics.listen
    # Watched only when served: events that cost to build are built only for a watcher.
    metrics = Metrics() if listen is not None else None
    host = ServerHost(settings, engine, context, metrics.observe if metrics else None)
    try:
        addresses = host.start()
    except OSError as exc:
        where = format_address(settings.server.host, settings.server.port)
        print(f"chatsecure-server: cannot listen on {where}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    if metrics is not None and listen is not None:
        try:
            metrics.serve(listen, host.stats)
        except OSError as exc:
            print(f"chatsecure-server: cannot serve metrics on {listen}: {exc}", file=sys.stderr)
            host.stop()
            return EXIT_RUNTIME
    print_banner(out, settings, addresses, fingerprint)
    notify.ready()
    while (signum := _next_request(requests)) is signal.SIGHUP:
        log.info("received SIGHUP: reloading")
        notify.reloading()
        try:
            reload(host, logs, settings.path)  # the file we started from, wherever we are now
        except Exception:  # a reload must never take the running server down
            log.exception("reload failed; the server goes on as it was")
        notify.ready()
    log.info("received %s: shutting down", signum.name)
    notify.stopping()
    host.stop()
    if metrics is not None:
        metrics.close()
    log.info("stopped")
    return EXIT_OK


def _next_request(requests: Requests) -> signal.Signals:
    while True:
        try:  # a timed wait keeps the main thread responsive to signals
            return requests.get(timeout=0.5)
        except queue.Empty:
            continue


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


def print_banner(
    out: TextIO, settings: Settings, addresses: Sequence[str], fingerprint: str
) -> None:
    """What an admin needs to point clients at us; no secrets (the DB password is hidden)."""
    for address in addresses:
        print(f"chatsecure-server {version()} listening on {address}", file=out)
    print(f"TLS: {tls_versions(settings.tls.profile)} ({settings.tls.profile} profile)", file=out)
    print(f"certificate SHA-256 fingerprint: {fingerprint}", file=out)
    database = make_url(settings.database.url).render_as_string(hide_password=True)
    print(f"database: {database}", file=out)
    if settings.metrics.listen is not None:
        print(f"metrics: http://{settings.metrics.listen}/metrics", file=out)
    if settings.logging.file is not None:
        print(f"log: {settings.logging.file}", file=out)
    print("press Ctrl-C to stop, or send SIGHUP to reload", file=out, flush=True)


def install_signal_handlers(requests: Requests, signals: Sequence[signal.Signals]) -> None:
    """Each of ``signals`` is queued on ``requests`` for the main thread to act on.

    The handler only queues (``SimpleQueue.put`` is reentrant; a lock or a log call could
    deadlock with the code it interrupted). After a stop signal, the next one kills.
    """

    def handle(signum: int, _frame: FrameType | None) -> None:
        if signum in STOP_SIGNALS:
            for stop in STOP_SIGNALS:
                signal.signal(stop, signal.SIG_DFL)
        requests.put(signal.Signals(signum))

    for signum in signals:
        signal.signal(signum, handle)


if __name__ == "__main__":
    sys.exit(main())
