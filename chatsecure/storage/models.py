"""The schema as typed SQLAlchemy models. Migrations in ``migrations/`` create it.

Portable on purpose: nothing here is SQLite-only, so the same store can move to
PostgreSQL. Message ids come from the database (an identity column, assigned in commit
order by the single message writer), and message times are integer milliseconds since
the Unix epoch (UTC): compact, ordered and cheap to convert when exporting millions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; on SQLite it must be exactly INTEGER to alias the rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Account(Base):
    """A person who can log in. ``name`` as created; ``name_key`` makes names case-blind."""

    __tablename__ = "accounts"
    # Account ids key direct conversations, so SQLite must never reuse a deleted one.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    name_key: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime())
    disabled: Mapped[bool] = mapped_column(Boolean(), default=False)
    # Login throttling: failures counted since failures_since (the window's start).
    failed_logins: Mapped[int] = mapped_column(Integer(), default=0)
    failures_since: Mapped[datetime | None] = mapped_column(DateTime())
    # Goes up on each password change: sessions that logged in before it are ended.
    credential_generation: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")
    # A server admin may moderate every room (``adduser --admin``, ``admin NAME on``).
    is_admin: Mapped[bool] = mapped_column(Boolean(), default=False, server_default=false())


class Room(Base):
    __tablename__ = "rooms"
    __table_args__ = (Index(None, "created_by"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    # Who created the room (NULL for admin-made rooms and deleted accounts): caps per creator.
    created_by: Mapped[int | None] = mapped_column(
        Id, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    # A private room is invisible to whoever is not a member (nor invited).
    private: Mapped[bool] = mapped_column(Boolean(), default=False, server_default=false())
    topic: Mapped[str] = mapped_column(String(300), default="", server_default="")


# A member's role in a room, most rights first.
ROLES = ("owner", "moderator", "member")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        Index(None, "room_id"),
        CheckConstraint(f"role IN ({', '.join(map(repr, ROLES))})", name="role"),
    )

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    joined_at: Mapped[datetime] = mapped_column(DateTime())
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    # The newest message id the account has read here, on any device; only moves forward.
    read_up_to: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")


class RoomInvite(Base):
    """An invitation into a room; it counts while the inviter may still invite."""

    __tablename__ = "room_invites"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    inviter_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime())


class RoomBan(Base):
    """An account banned from a room: its joins are refused until it is unbanned."""

    __tablename__ = "room_bans"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    by_name: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300), default="", server_default="")
    at: Mapped[datetime] = mapped_column(DateTime())
    # Whether the account was told (it was a member, and got ``kicked``). A private room
    # stays missing to an account banned without being told. Bans older than the column
    # were all told, hence its server default.
    disclosed: Mapped[bool] = mapped_column(Boolean(), server_default=true())


# A file's public id: random, URL-safe, never a database sequence (see store.new_file_id).
FILE_ID_LENGTH = 32


class File(Base):
    """A file shared in a message: what the message shows of it, and whose quota it uses.

    The bytes live in the blob store (``blobs.py``) under ``sha256``, so two uploads of
    the same content share one blob; a row lives as long as a message refers to it
    (``Store.sweep_files`` drops the others). ``name`` is the uploader's, for display
    only: no path is ever built from it.
    """

    __tablename__ = "files"
    __table_args__ = (Index(None, "sha256"), Index(None, "account_id"))

    id: Mapped[str] = mapped_column(String(FILE_ID_LENGTH), primary_key=True)
    sha256: Mapped[str] = mapped_column(CHAR(64))
    size: Mapped[int] = mapped_column(BigInteger())
    name: Mapped[str] = mapped_column(String(255))
    mime: Mapped[str] = mapped_column(String(255))
    # The uploader (NULL once the account is deleted): counts against its quota.
    account_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    created_ms: Mapped[int] = mapped_column(BigInteger())


DIRECT = text("pair_low IS NOT NULL")  # a direct message, not a room's
SHARES_FILE = text("file_id IS NOT NULL")


class Message(Base):
    """One stored message: in a room, or between the pair (``pair_low``, ``pair_high``).

    Sender and recipient names are kept as they were, so history reads without joins
    and survives the deletion of an account. The pair holds account ids (never reused),
    so a new account that takes a deleted name cannot read the old one's conversations.
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index(None, "room_id", "id"),
        Index(None, "pair_low", "pair_high", "id"),
        Index(None, "sender_id"),
        # Few messages share a file: the others stay out of the index, and their inserts
        # cost no index write.
        Index(None, "file_id", postgresql_where=SHARES_FILE, sqlite_where=SHARES_FILE),
        # A cluster node reads an account's new direct messages, either side of the pair.
        Index(None, "pair_low", "id", postgresql_where=DIRECT, sqlite_where=DIRECT),
        Index(None, "pair_high", "id", postgresql_where=DIRECT, sqlite_where=DIRECT),
        CheckConstraint(
            "(room_id IS NULL) <> (pair_low IS NULL AND pair_high IS NULL)",
            name="room_or_pair",
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger())
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    pair_low: Mapped[int | None] = mapped_column(BigInteger())
    pair_high: Mapped[int | None] = mapped_column(BigInteger())
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    sender_name: Mapped[str] = mapped_column(String(32))
    recipient_name: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text())
    # Set by an edit (the text is then the latest one); NULL if never edited.
    edited_ms: Mapped[int | None] = mapped_column(BigInteger())
    # A deleted message keeps its row (ids and history stay whole) but its text is ''.
    # No Python-side default: insert_messages' prepared INSERTs name their columns only.
    deleted: Mapped[bool] = mapped_column(Boolean(), server_default=false())
    # The file the message shares; a deletion clears it, so the file can be swept.
    file_id: Mapped[str | None] = mapped_column(
        String(FILE_ID_LENGTH), ForeignKey("files.id", ondelete="SET NULL")
    )


class DirectPeer(Base):
    """Who an account has talked to privately, and the newest message id between them.

    Kept by the message writer in the same transaction as the message, so "the most
    recently active peers" on login is an index range instead of a scan of every
    direct message the account ever exchanged.
    """

    __tablename__ = "direct_peers"
    __table_args__ = (Index(None, "account_id", "last_message_id"),)

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    peer_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    last_message_id: Mapped[int] = mapped_column(BigInteger())
    # As Membership.read_up_to, for this account's side of the conversation.
    read_up_to: Mapped[int] = mapped_column(BigInteger(), default=0, server_default="0")


class RoomEventRow(Base):
    """The journal of changes that are not messages (topics, roles, kicks, invites, edits,
    deletions, read markers), written in the transaction of the change.

    A server polls it for rows another process wrote (``origin``: a node's name, or
    "admin" for the CLI), so the change reaches its sessions too. Ids are never reused
    (a poller keeps the last one it saw); old rows are pruned by ``at_ms``.
    """

    __tablename__ = "room_events"
    __table_args__ = (
        Index(None, "at_ms"),
        # A deletion blanks the text that earlier edits of the message left here.
        Index(None, "message_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at_ms: Mapped[int] = mapped_column(BigInteger())
    origin: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    room: Mapped[str | None] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(BigInteger())
    user: Mapped[str | None] = mapped_column(String(32))
    by: Mapped[str | None] = mapped_column(String(32))
    message_id: Mapped[int | None] = mapped_column(BigInteger())
    peer_id: Mapped[int | None] = mapped_column(BigInteger())
    detail: Mapped[str | None] = mapped_column(Text())
    flag: Mapped[bool | None] = mapped_column(Boolean())


class ClusterNode(Base):
    """A server node of a cluster and when it last said it is alive (the database's clock).

    A node whose heartbeat is older than ``[cluster] node_timeout`` is dead to the others,
    and so is its presence.
    """

    __tablename__ = "cluster_nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClusterPresence(Base):
    """An account with at least one session open on a node: online while any node is."""

    __tablename__ = "cluster_presence"
    __table_args__ = (Index(None, "account_id"),)

    node: Mapped[str] = mapped_column(
        ForeignKey("cluster_nodes.name", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )


class AddressFailure(Base):
    """Failed password checks from one client address in the current window.

    Stored like an account's (``failed_logins``, ``failures_since``), so the per-address
    login throttle holds across a restart and across the nodes of a cluster. A row whose
    window has ended counts for nothing and is pruned by the housekeeping.
    """

    __tablename__ = "address_failures"
    __table_args__ = (Index(None, "since"),)

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer())
    since: Mapped[datetime] = mapped_column(DateTime())
