"""full-text search over message text

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:30:00

SQLite: an FTS5 table over ``messages.text`` that holds only the index (external
content: the text stays in ``messages``), kept in step by triggers, so every writer of
messages (the message writer, edits, deletions, purges, erasures) keeps it right
without knowing of it. PostgreSQL: a stored ``tsvector`` column of the text's words,
with accents folded by the ``unaccent`` extension, and a GIN index over it. Both match
whole words, case- and accent-blind, without stemming: a chat holds names, code and many
languages, and no one stemmer fits.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The names chatsecure/storage/search.py queries, spelled out: a migration stays as it was.
PG_VECTOR_FUNCTION = "chatsecure_search_vector"
PG_PHRASE_FUNCTION = "chatsecure_search_phrase"
PG_INDEX = "ix_messages_search"
PG_VECTOR_COLUMN = "search_vector"
# An edit replaces the text in the index; a deletion (text '') and a purge take it out.
# An external-content FTS5 table forgets a row by being told the text it indexed.
_SQLITE_TRIGGERS = {
    "messages_fts_insert": """
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
        END""",
    "messages_fts_delete": """
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text)
            VALUES ('delete', old.id, old.text);
        END""",
    "messages_fts_update": """
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text)
            VALUES ('delete', old.id, old.text);
            INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
        END""",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _upgrade_sqlite()
    else:
        _upgrade_postgresql()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    else:
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        op.execute(f"ALTER TABLE messages DROP COLUMN IF EXISTS {PG_VECTOR_COLUMN}")
        op.execute(f"DROP FUNCTION IF EXISTS {PG_PHRASE_FUNCTION}(text)")
        op.execute(f"DROP FUNCTION IF EXISTS {PG_VECTOR_FUNCTION}(text)")
        op.execute("DROP EXTENSION IF EXISTS unaccent")


def _upgrade_sqlite() -> None:
    # remove_diacritics 2 folds every accent (1 misses some composed letters).
    op.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
    )
    for create in _SQLITE_TRIGGERS.values():
        op.execute(create)
    # Index the messages already there.
    op.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")


def _upgrade_postgresql() -> None:
    bind = op.get_bind()
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    schema = bind.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'unaccent'"
    ).scalar_one()
    ext = bind.dialect.identifier_preparer.quote_identifier(schema)
    # unaccent() is only STABLE (its dictionary could change), and an index needs
    # IMMUTABLE: these wrappers name the dictionary and the schema, so no search_path
    # (a restore runs with an empty one) can make them mean something else.
    folded = f"{ext}.unaccent('{ext}.unaccent'::pg_catalog.regdictionary, $1)"
    for name, returns, body in (
        (PG_VECTOR_FUNCTION, "tsvector", f"pg_catalog.to_tsvector('pg_catalog.simple', {folded})"),
        (
            PG_PHRASE_FUNCTION,
            "tsquery",
            f"pg_catalog.phraseto_tsquery('pg_catalog.simple', {folded})",
        ),
    ):
        op.execute(
            f"CREATE FUNCTION {name}(text) RETURNS pg_catalog.{returns} LANGUAGE sql "
            f"IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT {body} $$"
        )
    # Stored, not only indexed: a phrase (and a page read newest first) checks each
    # candidate's words, which an expression index would work out again from the text.
    op.execute(
        f"ALTER TABLE messages ADD COLUMN {PG_VECTOR_COLUMN} pg_catalog.tsvector"
        f" GENERATED ALWAYS AS ({PG_VECTOR_FUNCTION}(text)) STORED"
    )
    op.execute(f"CREATE INDEX {PG_INDEX} ON messages USING gin ({PG_VECTOR_COLUMN})")
