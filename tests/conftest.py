"""Fixtures every test suite can use: a scratch config, its settings, databases, a store.

``database_url`` (empty) and ``store`` (migrated) come once on SQLite and once on a real
PostgreSQL that ``postgres`` starts for the run (tests/pg.py). A machine without
PostgreSQL fails those tests, naming what to install: they are never skipped.

``write_config`` is both a fixture and the helper it returns, so a test can make several
configs: ``write_config(tmp_path / "b", auth={"bcrypt_rounds": 12})``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chatsecure.config import Settings, load_settings
from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.store import Store
from tests.pg import PostgresServer, PostgresUnavailableError

# The cheapest cost bcrypt_rounds allows: tests hash many passwords.
TEST_SECTIONS: dict[str, dict[str, Any]] = {
    "auth": {"bcrypt_rounds": 10},
}

WriteConfig = Callable[..., Path]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(directory: Path, **overrides: Mapping[str, Any]) -> Path:
    """Write ``directory/config.toml``: the defaults (relative paths, so certificates and
    database land in ``directory``), bcrypt_rounds 10, and ``overrides`` merged per section.
    """
    directory.mkdir(parents=True, exist_ok=True)
    sections = {name: dict(values) for name, values in TEST_SECTIONS.items()}
    for name, values in overrides.items():
        sections.setdefault(name, {}).update(values)
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {_toml_value(v)}\n" for key, v in values.items()) + "\n"
        for name, values in sections.items()
    )
    path = directory / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(name="write_config")
def write_config_fixture() -> WriteConfig:
    return write_config


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def settings(config_path: Path) -> Settings:
    return load_settings(config_path)


DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the run, started when a test first needs it."""
    try:
        server = PostgresServer()
    except PostgresUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
    except PostgresUnavailableError as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@contextmanager
def _new_database(
    request: pytest.FixtureRequest, settings: Settings, *, migrated: bool
) -> Iterator[str]:
    """The URL of an empty (or freshly migrated) database of the kind ``request.param`` names."""
    if request.param == "sqlite":
        url = settings.database.url
        if migrated:
            engine = make_engine(url, settings.database.synchronous)
            upgrade(engine)
            engine.dispose()
        yield url
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    if migrated:
        yield server.clean_database()
        return
    url = server.new_database()
    yield url
    server.drop_database(url)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    """An empty database, on each kind the store supports."""
    with _new_database(request, settings, migrated=False) as url:
        yield url


@pytest.fixture(params=DATABASES)
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    """A store over a freshly migrated database, on each kind the store supports."""
    with _new_database(request, settings, migrated=True) as url:
        engine = make_engine(url, settings.database.synchronous)
        yield Store(engine)
        engine.dispose()
