"""Engines and migrations: how the store connects, and how its schema gets made.

SQLite gets its pragmas in a connect listener (once per connection), and transactions
begin explicitly: reads with a plain BEGIN, writes with BEGIN IMMEDIATE so a read-then-
write transaction waits for the lock (busy_timeout) instead of failing when another
writer committed in between. Other databases are left to their own defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from chatsecure.package import shipped

BUSY_TIMEOUT_MS = 10_000
WRITE_OPTION = "chatsecure_write"
SINGLE_STATEMENT_OPTION = "chatsecure_single_statement"


def migrations_dir() -> Path:
    """The Alembic scripts: inside the installed package, or the repo's top-level folder."""
    return shipped("migrations")


def make_engine(url: str, synchronous: str = "NORMAL", pool_size: int = 8) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout and ``synchronous``."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"pool_size": pool_size, "max_overflow": 32}
    # A failed statement's exception would otherwise quote its parameters, and the server
    # logs such exceptions: message text and password hashes must not reach the log.
    engine = create_engine(parsed, hide_parameters=True, **kwargs)
    if is_sqlite:
        _configure_sqlite(engine, synchronous)
    return engine


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's begin listener (below) decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get(SINGLE_STATEMENT_OPTION, False):
            return  # SQLite makes one statement atomic by itself
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION) else "BEGIN")


def write_engine(engine: Engine) -> Engine:
    """The same engine (and pool) whose transactions take the write lock at BEGIN."""
    return engine.execution_options(**{WRITE_OPTION: True})


def single_statement_engine(engine: Engine) -> Engine:
    """The same engine (and pool) for work that is one statement: no BEGIN, no COMMIT.

    SQLite runs a statement outside a transaction as one atomic transaction of its own,
    so the two extra statements would only cost time.
    """
    return engine.execution_options(**{SINGLE_STATEMENT_OPTION: True})


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Config]:
    cfg = _alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        yield cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema; idempotent."""
    with _migration_connection(engine) as cfg:
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    with _migration_connection(engine) as cfg:
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def is_known_revision(revision: str) -> bool:
    """Whether this chatsecure's migrations include ``revision``; a newer one's do not."""
    return revision in {
        script.revision
        for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()
    }


def newer_schema_advice(revision: str, shown: str) -> str:
    """What to do about a database (``shown`` names it) that a newer chatsecure made."""
    return (
        f"{shown} is at schema {revision}, which this chatsecure does not know (its newest "
        f"is {head_revision()}): this chatsecure is older than the database; upgrade chatsecure"
    )


def schema_problem(engine: Engine) -> str | None:
    """Why the database cannot be used as it is (absent, older or newer schema), or None.

    A missing SQLite file is reported before connecting, because connecting would
    create an empty one.
    """
    url = engine.url
    if (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and not Path(str(url.database)).exists()
    ):
        return f"there is no database at {url.database}; create it with: chatsecure-admin migrate"
    current, head = current_revision(engine), head_revision()
    if current != head:
        shown = url.render_as_string(hide_password=True)
        if current is not None and not is_known_revision(current):
            return newer_schema_advice(current, f"the database {shown}")
        return (
            f"the database {shown} is at schema {current or '(empty)'}, not the current "
            f"{head}; upgrade it with: chatsecure-admin migrate"
        )
    return None
