"""failed password checks per client address

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:00:00

The per-address login throttle counted in each server's memory, so every node of a
cluster (and every restart) gave an address a fresh budget. ``address_failures`` holds
the count and its window's start per address, as ``accounts`` does per account; the
index on ``since`` lets the housekeeping find the rows whose window has ended.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "address_failures",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_address_failures")),
    )
    op.create_index(op.f("ix_address_failures_since"), "address_failures", ["since"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_address_failures_since"), table_name="address_failures")
    op.drop_table("address_failures")
