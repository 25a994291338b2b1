"""cluster nodes with their heartbeats, who is online on which node, new-DM indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:10:00

Several server nodes on one database: each node's heartbeat (``cluster_nodes``), and
which accounts have a session open on it (``cluster_presence``), so a node knows who is
online elsewhere and notices a dead node. A node reads the direct messages it has not yet
delivered to an account by ``(pair_low, id)`` and ``(pair_high, id)``; both indexes are
partial, so room messages do not pay for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DIRECT = sa.text("pair_low IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cluster_nodes")),
    )
    op.create_table(
        "cluster_presence",
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_cluster_presence_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["node"],
            ["cluster_nodes.name"],
            name=op.f("fk_cluster_presence_node_cluster_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node", "account_id", name=op.f("pk_cluster_presence")),
    )
    op.create_index(
        op.f("ix_cluster_presence_account_id"), "cluster_presence", ["account_id"], unique=False
    )
    for side in ("pair_low", "pair_high"):
        op.create_index(
            op.f(f"ix_messages_{side}_id"),
            "messages",
            [side, "id"],
            unique=False,
            postgresql_where=DIRECT,
            sqlite_where=DIRECT,
        )


def downgrade() -> None:
    for side in ("pair_high", "pair_low"):
        op.drop_index(op.f(f"ix_messages_{side}_id"), table_name="messages")
    op.drop_index(op.f("ix_cluster_presence_account_id"), table_name="cluster_presence")
    op.drop_table("cluster_presence")
    op.drop_table("cluster_nodes")
