"""Engines and migrations: how the store connects, and how its schema gets made.

SQLite gets its pragmas in a connect listener (once per connection), and transactions
begin explicitly: reads with a plain BEGIN, writes with BEGIN IMMEDIATE so a read-then-
write transaction waits for the lock (busy_timeout) instead of failing when another
writer committed in between. PostgreSQL keeps its defaults (READ COMMITTED, writers
overlap); the store's writes are safe there without a lock at BEGIN (see store.py).
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

BUSY_TIMEOUT_MS = 10_000
WRITE_OPTION = "chatsecure_write"
SINGLE_STATEMENT_OPTION = "chatsecure_single_statement"


def migrations_dir() -> Path:
    """The Alembic scripts: inside the installed package, or the repo's top-level folder."""
    package_root = Path(__file__).resolve().parent.parent
    shipped = package_root / "migrations"
    if (shipped / "env.py").is_file():
        return shipped
    return package_root.parent / "migrations"


def make_engine(
    url: str,
    synchronous: str = "NORMAL",
    pool_size: int = 8,
    max_overflow: int = 32,
    pool_timeout: float = 30.0,
) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout and ``synchronous``.

    A database on disk or a server gets a pool of ``pool_size`` connections kept open,
    ``max_overflow`` more opened under load, and a wait of at most ``pool_timeout``
    seconds for one. An in-memory SQLite database keeps SQLAlchemy's own pool.
    """
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    in_memory = is_sqlite and parsed.database in (None, "", ":memory:")
    pool: dict[str, Any] = {}
    if not in_memory:
        pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
    if is_sqlite and not in_memory:
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    # A failed statement's exception would otherwise quote its parameters, and the server
    # logs such exceptions: message text and password hashes must not reach the log.
    engine = create_engine(parsed, hide_parameters=True, **pool)
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


def schema_problem(engine: Engine) -> str | None:
    """Why the database cannot be used as it is (absent, or an older schema), or None.

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
        return (
            f"the database {shown} is at schema {current or '(empty)'}, not the current "
            f"{head}; upgrade it with: chatsecure-admin migrate"
        )
    return None
