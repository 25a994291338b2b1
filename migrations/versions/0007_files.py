"""files shared in messages

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02 18:30:00

``files`` describes each shared file (its bytes are in the blob store, named by SHA-256),
and ``messages.file_id`` says which message shares it. Nothing here depends on what the
revisions before it did to ``messages``, so ``down_revision`` is the only line tied to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _alter_messages(change: Callable[[BatchOperations], None]) -> None:
    """Alter ``messages``, keeping its triggers.

    SQLite cannot add or drop a column with a named foreign key in place, so batch mode
    copies the table (foreign keys are off while migrations run: the drop of the old
    copy cascades nowhere). The copy keeps the rows, ids and indexes but not triggers,
    which are made again from their own SQL. PostgreSQL alters the table in place.
    """
    triggers: list[str] = []
    if op.get_context().dialect.name == "sqlite":
        found = op.get_bind().exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messages'"
        )
        triggers = list(found.scalars())
    with op.batch_alter_table("messages", schema=None) as batch_op:
        change(batch_op)
    for sql in triggers:
        op.execute(sql)


def _add_file_id(batch_op: BatchOperations) -> None:
    batch_op.add_column(sa.Column("file_id", sa.String(length=32), nullable=True))
    batch_op.create_foreign_key(
        batch_op.f("fk_messages_file_id_files"), "files", ["file_id"], ["id"], ondelete="SET NULL"
    )


def _drop_file_id(batch_op: BatchOperations) -> None:
    batch_op.drop_constraint(batch_op.f("fk_messages_file_id_files"), type_="foreignkey")
    batch_op.drop_column("file_id")


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.CHAR(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("mime", sa.String(length=255), nullable=False),
        sa.Column("account_id", Id, nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_files_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    op.create_index(op.f("ix_files_sha256"), "files", ["sha256"], unique=False)
    op.create_index(op.f("ix_files_account_id"), "files", ["account_id"], unique=False)
    _alter_messages(_add_file_id)
    shares_file = sa.text("file_id IS NOT NULL")
    op.create_index(
        op.f("ix_messages_file_id"),
        "messages",
        ["file_id"],
        unique=False,
        postgresql_where=shares_file,
        sqlite_where=shares_file,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_file_id"), table_name="messages")
    _alter_messages(_drop_file_id)
    op.drop_index(op.f("ix_files_account_id"), table_name="files")
    op.drop_index(op.f("ix_files_sha256"), table_name="files")
    op.drop_table("files")
