from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from chatsecure.storage.db import (
    current_revision,
    downgrade,
    head_revision,
    is_current,
    make_engine,
    migrations_dir,
    upgrade,
)
from chatsecure.storage.models import Base


def _compare(engine: Engine) -> Any:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_models_and_migrations_agree(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    assert _compare(engine) == []
    engine.dispose()


def test_upgrade_downgrade_upgrade(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert current_revision(engine) is None
    assert not is_current(engine)
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert is_current(engine)
    assert current_revision(engine) == head_revision()
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert is_current(engine)
    assert {"accounts", "rooms", "memberships", "messages", "direct_peers"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_migrations_are_found_for_the_package():
    assert (migrations_dir() / "env.py").is_file()
