"""What every admin command shares: the failure type, its context, progress on stderr."""

from __future__ import annotations

import functools
import time
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from chatsecure.config import Settings, load_settings
from chatsecure.storage.db import make_engine, schema_problem
from chatsecure.storage.store import Store


class CommandError(Exception):
    """The command failed for a reason the user can act on.

    ``main`` prints the message (never a traceback) and exits with ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def missing_driver(database: str, exc: ImportError) -> str:
    """What to say when SQLAlchemy cannot import the driver a database URL names."""
    return (
        f"{database}: its driver {exc.name} is not installed; install it beside chatsecure "
        f"(pip install {exc.name})"
    )


class Context:
    """A command's streams, with the settings and the database opened on first use."""

    def __init__(self, config: str | None, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
        self.config = config
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._engine: Engine | None = None

    @functools.cached_property
    def settings(self) -> Settings:
        return load_settings(self.config)

    def say(self, text: str) -> None:
        """A line of the command's result, on stdout."""
        print(text, file=self.stdout)

    def note(self, text: str) -> None:
        """A line about the work (progress, summaries), on stderr so stdout stays data."""
        print(text, file=self.stderr)

    def database(self) -> str:
        """The database URL with any password masked, for messages."""
        return make_url(self.settings.database.url).render_as_string(hide_password=True)

    def engine(self) -> Engine:
        if self._engine is None:
            database = self.settings.database
            try:
                self._engine = make_engine(database.url, database.synchronous, pool_size=2)
            except ImportError as exc:
                raise CommandError(missing_driver(self.database(), exc)) from None
        return self._engine

    def store(self) -> Store:
        """The store, once the database is known to have the current schema."""
        problem = schema_problem(self.engine())
        if problem:
            raise CommandError(problem)
        return Store(self.engine())

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


class Progress:
    """Running counts on stderr.

    At a terminal one line is rewritten in place twice a second; elsewhere (a log) an
    update is a line of its own every few seconds, unless ``terminal_only``. Quick jobs
    finish before the first update and print nothing.
    """

    def __init__(
        self,
        stream: TextIO,
        label: str,
        total: int | None = None,
        *,
        terminal_only: bool = False,
    ) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.interactive = stream.isatty()
        self.enabled = self.interactive or not terminal_only
        self.interval = 0.5 if self.interactive else 5.0
        self._last = time.monotonic()
        self._shown = False

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < self.interval:
            return
        self._last = now
        self._shown = True
        count = f"{done}/{self.total}" if self.total is not None else str(done)
        end = "" if self.interactive else "\n"
        start = "\r" if self.interactive else ""
        self.stream.write(f"{start}{self.label}: {count}{end}")
        self.stream.flush()

    def finish(self) -> None:
        """End the in-place line, so what follows starts on a line of its own."""
        if self._shown and self.interactive:
            self.stream.write("\n")
