"""Alembic environment: run from code with a connection passed in ``config.attributes``.

chatsecure never runs Alembic from an ini file: ``chatsecure.storage.db.upgrade`` builds
the Config in code and hands over the connection it wants migrated.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from chatsecure.storage.models import Base
from chatsecure.storage.search import include_in_models

config = context.config
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        include_name=include_in_models,  # the search index is the migrations' alone
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:  # the alembic CLI during development: `alembic -x url=sqlite:///x.db revision ...`
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///chatsecure.db")
    with create_engine(url).begin() as cli_connection:
        run_with(cli_connection)
