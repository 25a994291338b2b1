from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from chatsecure.storage.db import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    migrations_dir,
    schema_problem,
    upgrade,
)
from chatsecure.storage.models import Base


def _compare(engine: Engine) -> Any:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_models_and_migrations_agree(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    assert _compare(engine) == []
    engine.dispose()


def test_a_missing_sqlite_file_is_reported_and_not_made(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert "there is no database" in (schema_problem(engine) or "")
    assert not (tmp_path / "db.sqlite").exists()  # asking did not create it
    engine.dispose()


def test_upgrade_downgrade_upgrade(database_url):
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    assert "is at schema (empty)" in (schema_problem(engine) or "")
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert schema_problem(engine) is None
    assert current_revision(engine) == head_revision()
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert schema_problem(engine) is None
    assert {"accounts", "rooms", "memberships", "messages", "direct_peers"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_migrations_are_found_for_the_package():
    assert (migrations_dir() / "env.py").is_file()
