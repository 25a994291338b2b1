"""Engines and migrations: how the store connects, and how its schema gets made.

SQLite gets its pragmas in a connect listener (once per connection), and transactions
begin explicitly: reads with a plain BEGIN, writes with BEGIN IMMEDIATE so a read-then-
write transaction waits for the lock (busy_timeout) instead of failing when another
writer committed in between. PostgreSQL keeps its defaults (READ COMMITTED, writers
overlap); the store's writes are safe there without a lock at BEGIN (see store.py).

A SQLite database holds password hashes and every message, so its files are private:
the database file is created 0600 before SQLite opens it (SQLite gives its -wal, -shm
and -journal files the database file's mode), folders we create for it are 0700, and
``upgrade`` (``chatsecure-admin migrate``) makes existing files 0600.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from chatsecure.package import shipped

BUSY_TIMEOUT_MS = 10_000
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700
# What SQLite keeps beside a database file, in the database's own mode.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
WRITE_OPTION = "chatsecure_write"
SINGLE_STATEMENT_OPTION = "chatsecure_single_statement"
SQLITE_CACHE_KIB = 512  # SQLite's page cache per connection


def migrations_dir() -> Path:
    """The Alembic scripts: inside the installed package, or the repo's top-level folder."""
    return shipped("migrations")


def make_engine(
    url: str,
    synchronous: str = "NORMAL",
    pool_size: int = 8,
    max_overflow: int = 8,
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
    database = sqlite_file(parsed)
    if database is not None:
        _make_private_folders(database.parent)
    # A failed statement's exception would otherwise quote its parameters, and the server
    # logs such exceptions: message text and password hashes must not reach the log.
    engine = create_engine(parsed, hide_parameters=True, **pool)
    if is_sqlite:
        _configure_sqlite(engine, synchronous)
    if database is not None:
        _create_private(engine, database)
    return engine


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite database URL; None for other databases and in-memory ones."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    if name.startswith("file:"):  # a SQLite URI: its options are SQLite's business
        return None
    return Path(name)


def database_files(url: str | URL) -> list[Path]:
    """The SQLite database file and the companions SQLite keeps beside it, those that exist."""
    database = sqlite_file(url)
    if database is None:
        return []
    candidates = [database, *(database.with_name(database.name + s) for s in SQLITE_COMPANIONS)]
    return [path for path in candidates if path.exists()]


def make_private(url: str | URL) -> None:
    """Make the files of a SQLite database readable and writable by their owner only."""
    for path in database_files(url):
        path.chmod(PRIVATE_FILE_MODE)


def _make_private_folders(folder: Path) -> None:
    """Create ``folder`` and missing parents 0700 (``mkdir(parents=True)`` ignores mode)."""
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        with suppress(FileExistsError):  # another process made it meanwhile
            path.mkdir(mode=PRIVATE_FOLDER_MODE)


def _create_private(engine: Engine, database: Path) -> None:
    """Before each connect, create the database file 0600 if it is missing.

    SQLite would create it 0644 (less the umask), and its -wal and -shm files with it.
    """

    @event.listens_for(engine, "do_connect")
    def create(*_args: Any) -> None:
        with suppress(FileExistsError):
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


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
        # A page cache per connection, and the pool opens dozens under load: a small one
        # bounds memory (the OS caches the file for all of them). In KiB when negative.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        # A deleted message's text must leave the file too: freed space is zeroed.
        cursor.execute("PRAGMA secure_delete=ON")
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
    """A connection to migrate in one transaction.

    On SQLite, foreign keys are off while it runs, as Alembic's batch mode needs: it
    alters a table by copying it and dropping the original, and with them on, the drop
    would cascade to every row that refers to the table (an upgrade from 0001 lost every
    message and membership that way). The keys are checked before the commit instead.
    """
    cfg = _alembic_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        # On the driver's connection, outside any transaction, or SQLite ignores it.
        raw = connection.connection.dbapi_connection
        if sqlite and raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                cfg.attributes["connection"] = connection
                yield cfg
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise RuntimeError(f"a migration broke a foreign key: {tuple(broken)}")
        finally:
            if sqlite and raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema, and make a SQLite database's files private; idempotent."""
    with _migration_connection(engine) as cfg:
        command.upgrade(cfg, revision)
    make_private(engine.url)


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
