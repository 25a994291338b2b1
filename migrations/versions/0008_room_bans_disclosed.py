"""room bans remember whether the banned account was told

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00

``room_bans.disclosed`` is true when the account was a member when banned, and so was
told by a ``kicked`` frame. A private room stays missing to an account banned without
being told. Bans stored before this revision keep what they were: their accounts were
all sent ``kicked`` (the server then told every ban), and their ``join`` got ``banned``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place (ALTER TABLE ADD COLUMN with a constant default), as 0005 adds columns.
    op.add_column(
        "room_bans",
        sa.Column("disclosed", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    op.drop_column("room_bans", "disclosed")  # plain DROP COLUMN (SQLite >= 3.35)
