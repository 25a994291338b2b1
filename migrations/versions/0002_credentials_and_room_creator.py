"""credential generation per account; who created each room

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 06:00:00

``accounts.credential_generation`` goes up on every password change, so a server (any
node) can end the sessions that logged in with the old password. ``rooms.created_by``
lets the server cap how many rooms one account creates.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credential_generation", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", Id, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_rooms_created_by_accounts"),
            "accounts",
            ["created_by"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(batch_op.f("ix_rooms_created_by"), ["created_by"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rooms_created_by"))
        batch_op.drop_constraint(batch_op.f("fk_rooms_created_by_accounts"), type_="foreignkey")
        batch_op.drop_column("created_by")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("credential_generation")
