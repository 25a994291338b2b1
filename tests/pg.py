"""A real PostgreSQL server for the tests, started and stopped by the test run itself.

The server gets a fresh data directory under the system's temporary folder and listens
only on a unix socket there (no TCP port). PostgreSQL refuses to run as root, so when
the tests run as root, ``initdb`` and ``postgres`` run as the ``postgres`` user that
Debian's package creates. It trades durability for speed (``fsync=off``): its data dies
with the run anyway. The postmaster is a direct child of pytest that Linux stops (a
fast shutdown) if the run dies, so a killed run leaves no server behind.

A test that needs an empty database gets a new one (``new_database``, ~0.4 s). Store tests
share one migrated database that ``clean_database`` empties before each (~0.04 s):
TRUNCATE with RESTART IDENTITY leaves it as a fresh migration would, ids from 1.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.models import Base
from tests.serverproc import spawn

INSTALL_HINT = (
    "the tests need a PostgreSQL server (Debian's package 'postgresql'; as root: "
    "apt-get install postgresql)"
)
SUPERUSER = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 60.0
EMPTY_TEMPLATE = "chatsecure_empty"
STORE_DATABASE = "chatsecure_store"
# A connection a test leaked must fail the next test's clean-up, not hang it.
LOCK_TIMEOUT = "10s"
# Durability is worth nothing for a throwaway server; speed is.
SERVER_OPTIONS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresUnavailableError(Exception):
    """PostgreSQL could not be started; the message says what to install or look at."""


def postgres_bindir() -> Path:
    """The folder with ``initdb`` and ``postgres``: on PATH, else Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent

    def version(folder: Path) -> int:
        return int(folder.parent.name) if folder.parent.name.isdigit() else -1

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise PostgresUnavailableError(
        f"no initdb on PATH nor in /usr/lib/postgresql/*/bin: {INSTALL_HINT}"
    )


def _as_server_user() -> dict[str, Any]:
    """``subprocess`` options that run a command as the ``postgres`` user if we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresUnavailableError(
            f"running as root and there is no {SUPERUSER!r} user to run PostgreSQL as: "
            f"{INSTALL_HINT}"
        ) from None
    return {"user": SUPERUSER, "group": SUPERUSER, "extra_groups": []}


class PostgresServer:
    """One PostgreSQL server on a unix socket in its own temporary folder."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.folder = Path(tempfile.mkdtemp(prefix="chatsecure-pg-"))
        self.data = self.folder / "data"
        self.log_path = self.folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self._user = _as_server_user()
        if self._user:
            shutil.chown(self.folder, SUPERUSER, SUPERUSER)

    def start(self) -> None:
        """initdb, start the server, wait until it accepts connections, make the templates."""
        initdb = [
            str(self.bindir / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        ]
        done = subprocess.run(
            initdb,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            **self._user,
        )
        if done.returncode != 0:
            raise PostgresUnavailableError(
                f"initdb exited {done.returncode}:\n{done.stdout}{done.stderr}\n{INSTALL_HINT}"
            )
        options = [f"-c{key}={value}" for key, value in SERVER_OPTIONS.items()]
        with self.log_path.open("ab") as log:
            self.process = spawn(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-k",
                    str(self.folder),
                    *options,
                ],
                on_parent_death=signal.SIGINT,  # a fast shutdown
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **self._user,
            )
        self._wait_until_ready()
        self._admin(f"CREATE DATABASE {EMPTY_TEMPLATE}")
        self._admin(f"CREATE DATABASE {STORE_DATABASE}")
        engine = make_engine(self.url(STORE_DATABASE))
        upgrade(engine)
        engine.dispose()

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if self.process.poll() is not None:
                    raise PostgresUnavailableError(
                        f"postgres exited {self.process.returncode} at start:\n{self.log()}"
                    ) from exc
                if time.monotonic() > deadline:
                    raise PostgresUnavailableError(
                        f"postgres did not accept connections within {START_TIMEOUT}s:\n"
                        f"{self.log()}"
                    ) from exc
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def dsn(self, database: str) -> str:
        """A libpq connection string for psycopg itself."""
        return f"host={self.folder} user={SUPERUSER} dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database``, as a chatsecure config would write it."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.folder}"

    def _admin(self, sql: str, database: str = "postgres") -> None:
        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'".encode())
            conn.execute(sql.encode())

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        name = f"test_{next(self._names)}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {EMPTY_TEMPLATE}")
        return self.url(name)

    def clean_database(self) -> str:
        """The shared database at the current schema, emptied as if just migrated; its URL."""
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{STORE_DATABASE}' AND pid <> pg_backend_pid()"
        )
        self._admin(f"TRUNCATE {tables} RESTART IDENTITY CASCADE", STORE_DATABASE)
        return self.url(STORE_DATABASE)

    def drop_database(self, url: str) -> None:
        """Drop a database made by ``new_database``, ending any connection left to it."""
        name = str(make_url(url).database)
        if not re.fullmatch(r"test_\d+", name):
            raise ValueError(f"not a test database: {url}")
        self._admin(f"DROP DATABASE {name} WITH (FORCE)")

    def stop(self) -> None:
        """A fast shutdown (killed if it hangs), then the folder goes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)
