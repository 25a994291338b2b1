"""private rooms, roles, invites, bans, edits and deletions, read markers, the room journal

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:30:00

Rooms gain ``private`` and ``topic``, memberships a ``role`` (the creator of an existing
room becomes its owner) and a read marker, as do direct peers. Accounts gain
``is_admin``. Messages gain ``edited_ms`` and ``deleted``. ``room_invites`` and
``room_bans`` say who may and who may not join. ``room_events`` journals the changes that
are not messages, so a change another process made reaches a running server's sessions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Columns with constant defaults are added in place (ALTER TABLE ADD COLUMN). A batch
    # copy of accounts or rooms would drop the old table, and with foreign keys on SQLite
    # that cascades: every membership and message would be deleted with it.
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_admin", sa.Boolean(), nullable=False, server_default="0"))
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("private", sa.Boolean(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("topic", sa.String(length=300), nullable=False, server_default="")
        )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="member")
        )
        batch_op.add_column(
            sa.Column("read_up_to", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_memberships_role"), "role IN ('owner', 'moderator', 'member')"
        )
    op.execute(
        "UPDATE memberships SET role = 'owner' WHERE account_id = "
        "(SELECT rooms.created_by FROM rooms WHERE rooms.id = memberships.room_id)"
    )
    with op.batch_alter_table("direct_peers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("read_up_to", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edited_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("deleted", sa.Boolean(), nullable=False, server_default="0"))
    op.create_table(
        "room_invites",
        sa.Column("room_id", Id, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("inviter_id", Id, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_room_invites_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_room_invites_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inviter_id"],
            ["accounts.id"],
            name=op.f("fk_room_invites_inviter_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("room_id", "account_id", name=op.f("pk_room_invites")),
    )
    op.create_table(
        "room_bans",
        sa.Column("room_id", Id, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("by_name", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_room_bans_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_room_bans_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("room_id", "account_id", name=op.f("pk_room_bans")),
    )
    op.create_table(
        "room_events",
        sa.Column("id", Id, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("room", sa.String(length=32), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("user", sa.String(length=32), nullable=True),
        sa.Column("by", sa.String(length=32), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("peer_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("flag", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_room_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_room_events_at_ms"), "room_events", ["at_ms"], unique=False)
    op.create_index(op.f("ix_room_events_message_id"), "room_events", ["message_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_room_events_message_id"), table_name="room_events")
    op.drop_index(op.f("ix_room_events_at_ms"), table_name="room_events")
    op.drop_table("room_events")
    op.drop_table("room_bans")
    op.drop_table("room_invites")
    # Plain DROP COLUMN (SQLite >= 3.35), not a batch copy: dropping the old copy of
    # accounts or rooms would cascade, deleting every membership and message.
    for table, column in (
        ("messages", "deleted"),
        ("messages", "edited_ms"),
        ("direct_peers", "read_up_to"),
        ("rooms", "topic"),
        ("rooms", "private"),
        ("accounts", "is_admin"),
    ):
        op.drop_column(table, column)
    # Nothing refers to memberships: copying it is safe (and SQLite cannot drop a CHECK).
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_memberships_role"), type_="check")
        batch_op.drop_column("read_up_to")
        batch_op.drop_column("role")
