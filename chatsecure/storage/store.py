"""The store: every query the server and the admin tools make, behind one small class.

Callers get plain frozen records, never ORM objects, so results can cross threads.
Each method owns one transaction; ``insert_messages`` takes a whole batch in one, because
the server's single message writer commits whatever is queued at once (one transaction
per message is ~30x slower on SQLite). It knows nothing of sockets or the protocol.

It runs on SQLite and on PostgreSQL, and no write may depend on SQLite's ``BEGIN
IMMEDIATE`` (which lets one writer in at a time) to be safe: PostgreSQL lets concurrent
writers in, at READ COMMITTED. So a write that depends on what is there is one statement
that decides by itself (``UPDATE ... SET n = n + 1``, ``INSERT ... ON CONFLICT DO
NOTHING``), or takes row locks first (``insert_messages``). Only this module knows the
two dialects apart.
"""

from __future__ import annotations

import enum
import functools
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    String,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, outerjoin, sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from chatsecure.names import username_key
from chatsecure.storage.db import single_statement_engine, write_engine
from chatsecure.storage.models import (
    Account,
    AddressFailure,
    DirectPeer,
    File,
    Membership,
    Message,
    Room,
    RoomBan,
    RoomEventRow,
    RoomInvite,
)
from chatsecure.storage.search import compact_search_index, matching, parse_terms


class StoreError(Exception):
    """A request the store refuses; the message says why in the user's terms."""


class NameTakenError(StoreError):
    pass


class RoomExistsError(NameTakenError):
    """``create_room``: the name is taken (a NameTakenError, as it always was)."""


class BannedError(StoreError):
    """``join_room``: the account is banned from the room."""


class RoomLimitError(StoreError):
    """A room was not created: the server, or its creator, has all the rooms allowed."""


class LastOwnerError(StoreError):
    """``set_role``: the account is the room's only owner, and a room keeps one."""


class Removed(enum.IntEnum):
    """What ``remove_member`` did; false only when it did nothing."""

    NOTHING = 0  # a kick of a non-member
    BANNED = 1  # a non-member banned: the ban is stored, and nobody is told
    MEMBER = 2  # a member removed (and banned, with ``ban``): journaled as "kicked"


@dataclass(frozen=True, slots=True)
class RoomCaps:
    """How many rooms there may be, and how many one account may create."""

    total: int
    per_creator: int


# PostgreSQL: one advisory lock serializes room creation, so the caps' counts cannot race
# (rooms are made rarely). SQLite's BEGIN IMMEDIATE serializes every write already.
_ROOM_CREATION_LOCK = 0x63687372_6F6F6D73  # "chsrooms"
# PostgreSQL: room journal appends take this lock until commit (see Store._journal).
_JOURNAL_LOCK = 0x63686A6F_75726E6C  # "chjournl"


class NoSuchAccountError(StoreError):
    pass


class NoSuchRoomError(StoreError):
    pass


# The journal's origin of changes made by chatsecure-admin: no node name has a colon.
ADMIN_ORIGIN = ":admin"

# The roles that moderate a room, and may invite into it.
MODERATING_ROLES = ("owner", "moderator")


def utcnow() -> datetime:
    """Naive UTC, as stored (portable DateTime columns carry no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: int
    name: str
    password_hash: str
    created_at: datetime
    last_login_at: datetime | None
    disabled: bool
    failed_logins: int
    failures_since: datetime | None
    credential_generation: int = 0  # goes up with each password change
    is_admin: bool = False  # may moderate every room


@dataclass(frozen=True, slots=True)
class RoomSummary:
    name: str
    members: int
    joined: bool
    topic: str = ""
    private: bool = False


@dataclass(frozen=True, slots=True)
class RoomRecord:
    id: int
    name: str
    private: bool
    topic: str
    created_by: int | None


@dataclass(frozen=True, slots=True)
class RoomView:
    """A room as one account stands to it (``Store.room_view``)."""

    room: RoomRecord
    role: str | None  # the account's role there; None if it is not a member


class RoomMemberRecord(NamedTuple):
    account_id: int
    name: str
    role: str  # owner, moderator or member


class RoomEvent(NamedTuple):
    """A row of the room journal (see ``RoomEventRow``); which fields a kind fills:

    - "joined": room, account_id, user (made a member: a room's creator, its owner)
    - "topic": room, by, detail (the topic)
    - "role": room, account_id, user, by, detail (the role)
    - "kicked": room, account_id, user, by, detail (the reason), flag (a ban)
    - "invited": room, account_id, user, by, detail (the room's topic)
    - "edited": message_id, by, detail (the new text, NULL once the message is deleted
      or purged), and the conversation: room, or account_id (the sender) and peer_id
      (the other party)
    - "deleted": message_id, by, and the conversation as for "edited"
    - "read": account_id (the reader), room or peer_id, message_id (the new marker)
    """

    id: int
    at_ms: int
    origin: str
    kind: str
    room: str | None
    account_id: int | None
    user: str | None
    by: str | None
    message_id: int | None
    peer_id: int | None
    detail: str | None
    flag: bool | None


# The two per-message records are NamedTuples: as immutable as frozen dataclasses, and
# three times cheaper to build, which the message writer does for every message.


class StoredFile(NamedTuple):
    """A file shared in a message, as readers see it; its bytes are the blob ``sha256``."""

    id: str
    name: str
    size: int
    sha256: str
    mime: str


def new_file_id() -> str:
    """A fresh public file id: random (128 bits), so ids cannot be guessed or counted."""
    return secrets.token_urlsafe(16)


class NewMessage(NamedTuple):
    """A message to store: to a room (``room_id``) or to an account (``recipient_id``),
    sharing ``file`` if given (its row is written with the message)."""

    sender_id: int
    sender_name: str
    text: str
    room_id: int | None = None
    room_name: str | None = None
    recipient_id: int | None = None
    recipient_name: str | None = None
    file: StoredFile | None = None


class StoredMessage(NamedTuple):
    id: int
    ts_ms: int
    sender: str
    text: str
    room: str | None = None
    to: str | None = None
    edited_ms: int | None = None  # when last edited; None if never
    deleted: bool = False  # then text is ''
    file: StoredFile | None = None  # the file it shares; None once deleted


# A StoredMessage without the objects: (id, ts_ms, sender, text, room, to, edited_ms,
# deleted, file_id, file_name, file_size, file_sha256, file_mime), the file's five None
# when the message shares none.
MessageRow = tuple[
    int,
    int,
    str,
    str,
    str | None,
    str | None,
    int | None,
    bool,
    str | None,
    str | None,
    int | None,
    str | None,
    str | None,
]


class MessageRef(NamedTuple):
    """A stored message and the ids of its conversation: ``room_id``, or the ``pair``
    (low, high) of account ids. ``sender_id`` is None once the sender's account is gone."""

    message: StoredMessage
    sender_id: int | None
    room_id: int | None
    pair: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class Page:
    """A history page, oldest first; ``more`` says whether the direction asked goes on."""

    messages: list[StoredMessage]
    more: bool


class At(NamedTuple):
    """A moment in ms since the epoch: a history bound by time where a message id is not
    known (an IRC ``timestamp=`` reference)."""

    ts_ms: int


# A history bound: a message id, or a moment.
Bound = int | At


@dataclass(frozen=True, slots=True)
class Activity:
    """A conversation of an account and the time of its latest message: a room, or a
    direct chat with ``peer``."""

    room: str | None
    peer: str | None
    last_ts_ms: int


def _account_record(a: Account) -> AccountRecord:
    return AccountRecord(
        a.id,
        a.name,
        a.password_hash,
        a.created_at,
        a.last_login_at,
        a.disabled,
        a.failed_logins,
        a.failures_since,
        a.credential_generation,
        a.is_admin,
    )


def _latest_per_pair(batch: Sequence[NewMessage]) -> dict[tuple[int, int], int]:
    """(account, peer) -> index in ``batch`` of their newest direct message, both ways."""
    latest: dict[tuple[int, int], int] = {}
    for index, m in enumerate(batch):
        if m.recipient_id is not None:
            latest[(m.sender_id, m.recipient_id)] = index
            latest[(m.recipient_id, m.sender_id)] = index
    return latest


# An account's failed-login count, cleared.
_NO_FAILURES: dict[str, object] = {"failed_logins": 0, "failures_since": None}


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a <= b else (b, a)


def _forget_edits(message_ids: Any) -> Any:
    """Blank the text that edits of these messages (ids, or a SELECT of them) left in the
    journal: once a message is deleted, no copy of its text may stay behind."""
    return (
        update(RoomEventRow)
        .where(RoomEventRow.kind == "edited", RoomEventRow.message_id.in_(message_ids))
        .values(detail=None)
    )


# Whether a message shares the file (the row in files): then it is the file's to keep.
_FILE_SHARED = select(Message.id).where(Message.file_id == File.id).exists()


# The INSERT constructs of the databases the store runs on: both have ON CONFLICT.
_DIALECT_INSERTS: dict[str, Callable[..., sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


# The columns of a StoredMessage, in its field order, the file's as its five fields (read
# them with ``message_from_row``). Select them FROM ``MESSAGE_FROM``: the room by name is
# joined from rooms, the file from files.
MESSAGE_COLUMNS = (
    Message.id,
    Message.ts_ms,
    Message.sender_name,
    Message.text,
    Room.name,
    Message.recipient_name,
    Message.edited_ms,
    Message.deleted,
    File.id,
    File.name,
    File.size,
    File.sha256,
    File.mime,
)
MESSAGE_FROM = outerjoin(Message, Room, Room.id == Message.room_id).outerjoin(
    File, File.id == Message.file_id
)


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    """The StoredMessage of a row of ``MESSAGE_COLUMNS`` (further columns are ignored)."""
    if row[8] is None:
        return StoredMessage(*row[:8])
    return StoredMessage._make((*row[:8], StoredFile(*row[8:13])))


# Column order of the rows insert_messages builds.
_INSERT_COLUMNS = (
    "ts_ms",
    "room_id",
    "pair_low",
    "pair_high",
    "sender_id",
    "sender_name",
    "recipient_name",
    "text",
)
# A batch is inserted in chunks of these sizes, so only a few statements are compiled
# and a batch of up to 1,023 rows takes at most 10.
_INSERT_CHUNKS = (512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
MAX_BATCH = _INSERT_CHUNKS[0]  # the largest batch one statement stores
_LATEST_IN_ROOM = (
    select(*MESSAGE_COLUMNS)
    .select_from(MESSAGE_FROM)
    .where(Message.room_id == bindparam("room_id"))
    .order_by(Message.id.desc())
    .limit(bindparam("limit"))
)
_LATEST_DIRECT = (
    select(*MESSAGE_COLUMNS)
    .select_from(MESSAGE_FROM)
    .where(Message.pair_low == bindparam("low"), Message.pair_high == bindparam("high"))
    .order_by(Message.id.desc())
    .limit(bindparam("limit"))
)
_ROOMS_OF = (
    select(Room.id, Room.name, Membership.read_up_to)
    .join(Membership, Membership.room_id == Room.id)
    .where(Membership.account_id == bindparam("account_id"))
    .order_by(Room.name)
)
_RECENT_PEERS = (
    select(Account.id, Account.name, DirectPeer.read_up_to)
    .join(DirectPeer, DirectPeer.peer_id == Account.id)
    .where(DirectPeer.account_id == bindparam("account_id"))
    .order_by(DirectPeer.last_message_id.desc())
    .limit(bindparam("limit"))
)
_MEMBERS_OF_ROOMS = (
    select(Membership.room_id, Account.id, Account.name, Membership.role)
    .join(Account, Membership.account_id == Account.id)
    .where(Membership.room_id.in_(bindparam("room_ids", expanding=True)))
    .order_by(Account.name_key)
)


# A room by name, with the account's role, ban (whether it was told; NULL for none) and
# invite there: one row, or none if the room is missing. A refusal of a room to an account
# is decided on this one lookup, so a hidden room costs what a missing one does.
_STANDING = (
    select(
        Room.id,
        Room.name,
        Room.private,
        Room.topic,
        Room.created_by,
        Membership.role,
        RoomBan.disclosed,
        RoomInvite.inviter_id,
    )
    .outerjoin(
        Membership,
        and_(Membership.room_id == Room.id, Membership.account_id == bindparam("account")),
    )
    .outerjoin(
        RoomBan, and_(RoomBan.room_id == Room.id, RoomBan.account_id == bindparam("account"))
    )
    .outerjoin(
        RoomInvite,
        and_(RoomInvite.room_id == Room.id, RoomInvite.account_id == bindparam("account")),
    )
    .where(Room.name == bindparam("name"))
)


@functools.cache
def _sqlite_chunk_sql(size: int) -> str:
    """SQL text (positional parameters, row after row) inserting ``size`` messages."""
    values: list[dict[str, Any]] = [
        {column: bindparam(f"{column}_{i}") for column in _INSERT_COLUMNS} for i in range(size)
    ]
    compiled = insert(Message).values(values).compile(dialect=sqlite.dialect())
    names = [f"{column}_{i}" for i in range(size) for column in _INSERT_COLUMNS]
    assert list(compiled.positiontup or ()) == names, "parameters out of row order"
    return compiled.string


def _unnested_insert() -> ReturningInsert[int]:
    """INSERT ... SELECT FROM unnest(one array per column) RETURNING id, for PostgreSQL.

    Its text is the same for any batch size, so psycopg parses and PostgreSQL prepares
    it once. A VALUES row per message made psycopg re-parse a long query text on every
    batch, which cost more than PostgreSQL's insert. unnest yields the rows in array
    order, so ids increase in batch order. Names go in as text arrays: an explicit cast
    to VARCHAR(32) would cut a longer name short, the column's own check refuses it.
    """
    table = Message.__table__

    def array_of(column: str) -> postgresql.ARRAY[Any]:
        return postgresql.ARRAY(
            Text() if isinstance(table.c[column].type, String) else BigInteger()
        )

    arrays = [bindparam(c, type_=array_of(c)) for c in _INSERT_COLUMNS]
    unnested = func.unnest(*arrays).table_valued(*_INSERT_COLUMNS).render_derived()
    rows = select(*(unnested.c[c] for c in _INSERT_COLUMNS))
    return insert(Message).from_select(_INSERT_COLUMNS, rows).returning(Message.id)


_INSERT_UNNESTED = _unnested_insert()


@dataclass(frozen=True, slots=True)
class LoginSnapshot:
    """What a login shows the account, read at one moment.

    ``rooms`` are (id, name) by name; ``room_pages``, ``members`` (by name) and
    ``room_reads`` (the account's read marker, 0 if never set) are keyed by room id;
    ``peers`` are the most recently active direct-message peers, newest first, each with
    the latest page of that conversation, and ``peer_reads`` their read markers by the
    peer's name as in ``peers``.
    """

    rooms: list[tuple[int, str]]
    room_pages: dict[int, Page]
    peers: list[tuple[str, Page]]
    members: dict[int, list[RoomMemberRecord]]
    room_reads: dict[int, int]
    peer_reads: dict[str, int]


# The text one history page may hold, in characters: 16 messages of the longest (4,000),
# or all 500 of a page of ordinary chat. Reading and sending a page costs memory in
# proportion, so a page that would hold more ends early and says ``more``.
PAGE_TEXT_CHARS = 64 * 1024


def _page_of(rows: Iterable[Any], limit: int, *, newest_first: bool) -> Page:
    """Up to ``limit`` of ``rows`` (read one by one, ``limit + 1`` asked), oldest first.

    The page ends at ``limit`` rows or ``PAGE_TEXT_CHARS``, whichever comes first, so
    rows past the cut are never built; those kept are the ones nearest where the query
    starts (the newest when ``newest_first``).
    """
    messages: list[StoredMessage] = []
    chars = 0
    more = False
    for row in rows:
        chars += len(row[3])  # the text
        if len(messages) == limit or (chars > PAGE_TEXT_CHARS and messages):
            more = True
            break
        messages.append(message_from_row(row))
    if newest_first:
        messages.reverse()
    return Page(messages, more)


def _latest(conn: Connection, query: Any, params: dict[str, object], limit: int) -> Page:
    """The newest ``limit`` rows of a prepared ``_LATEST_*`` query, as a page oldest first."""
    with conn.execute(query, params | {"limit": limit + 1}) as rows:
        return _page_of(rows, limit, newest_first=True)


class Store:
    """Queries over one database; safe to share between threads (sessions are not)."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in _DIALECT_INSERTS:
            raise ValueError(f"the store runs on SQLite or PostgreSQL, not {engine.dialect.name}")
        self.engine = engine
        self._insert = _DIALECT_INSERTS[engine.dialect.name]
        self._writer = write_engine(engine)
        self._single = single_statement_engine(engine)
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(self._writer, expire_on_commit=False)
        # Messages were deleted through this store since its search index was compacted.
        self.search_index_stale = False

    def close(self) -> None:
        """Close the pooled connections (one pool behind all three engines); the store
        opens new ones if it is used again."""
        self.engine.dispose()

    def reading(self) -> Session:
        return self._read()

    def writing(self) -> Session:
        """A session whose transaction takes the write lock at once (see db.py)."""
        return self._write()

    # -- accounts -------------------------------------------------------------------

    def create_accounts(
        self,
        accounts: Sequence[tuple[str, str]],
        default_rooms: Iterable[str],
        *,
        admin: bool = False,
    ) -> None:
        """Create (name, password_hash) accounts in the default rooms; all or none.

        With ``admin`` they are server admins, who may moderate every room.

        A name is taken when the insert finds it taken (ON CONFLICT DO NOTHING returns no
        id for it), so a concurrent creator of the same name gets NameTakenError, never an
        IntegrityError. Rows go in by name, and rooms by name, so two creators of
        overlapping sets take the same locks in the same order and cannot deadlock.
        """
        now = utcnow()
        by_key = {username_key(name): (name, pw_hash) for name, pw_hash in accounts}
        if len(by_key) < len(accounts):
            keys = [username_key(name) for name, _ in accounts]
            repeated = sorted({k for k in keys if keys.count(k) > 1})
            raise NameTakenError(f"the name {repeated[0]!r} appears more than once")
        rows = [
            {
                "name": name,
                "name_key": key,
                "password_hash": pw_hash,
                "created_at": now,
                "disabled": False,
                "failed_logins": 0,
                "is_admin": admin,
            }
            for key, (name, pw_hash) in sorted(by_key.items())
        ]
        new_accounts = (
            self._insert(Account)
            .on_conflict_do_nothing(index_elements=[Account.name_key])
            .returning(Account.id, Account.name_key)
        )
        with self.writing() as s, s.begin():
            room_ids = [self._room_id(s, name, now=now) for name in sorted(set(default_rooms))]
            created = dict(s.execute(new_accounts, rows).all()) if rows else {}
            if len(created) < len(rows):
                key = min(set(by_key) - set(created.values()))
                taken = s.scalar(select(Account.name).where(Account.name_key == key))
                raise NameTakenError(f"an account named {taken or by_key[key][0]!r} already exists")
            memberships = [
                {"account_id": a, "room_id": r, "joined_at": now} for a in created for r in room_ids
            ]
            if memberships:
                s.execute(insert(Membership), memberships)

    def create_account(
        self, name: str, password_hash: str, default_rooms: Iterable[str], *, admin: bool = False
    ) -> None:
        self.create_accounts([(name, password_hash)], default_rooms, admin=admin)

    def get_account(self, name: str) -> AccountRecord | None:
        with self.reading() as s:
            a = s.scalars(select(Account).where(Account.name_key == username_key(name))).first()
            return _account_record(a) if a else None

    def list_accounts(self) -> list[AccountRecord]:
        with self.reading() as s:
            return [
                _account_record(a) for a in s.scalars(select(Account).order_by(Account.name_key))
            ]

    def _update_account(self, name: str, **values: object) -> None:
        with self.writing() as s, s.begin():
            result = s.execute(
                update(Account).where(Account.name_key == username_key(name)).values(**values)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NoSuchAccountError(f"no account named {name!r}")

    def set_password(self, name: str, password_hash: str, *, clear_failures: bool = True) -> int:
        """A new password: the credential generation goes up, ending older sessions.

        Returns the new generation, which the session that made the change keeps.
        """
        failures = _NO_FAILURES if clear_failures else {}
        with self.writing() as s, s.begin():
            generation: int | None = s.scalar(
                update(Account)
                .where(Account.name_key == username_key(name))
                .values(
                    password_hash=password_hash,
                    credential_generation=Account.credential_generation + 1,
                    **failures,
                )
                .returning(Account.credential_generation)
            )
        if generation is None:
            raise NoSuchAccountError(f"no account named {name!r}")
        return generation

    def rehash_password(self, account_id: int, old_hash: str, new_hash: str) -> None:
        """The same password under a stronger hash: no new generation, nobody is logged out.

        Only if the hash is still ``old_hash``, so it never undoes a password change made
        while the login that rehashes was checking the old one.
        """
        with self.writing() as s, s.begin():
            s.execute(
                update(Account)
                .where(Account.id == account_id, Account.password_hash == old_hash)
                .values(password_hash=new_hash)
            )

    def set_disabled(self, name: str, disabled: bool) -> None:
        self._update_account(name, disabled=disabled)

    def set_admin(self, name: str, admin: bool) -> None:
        """Make the account a server admin (who may moderate every room), or not: then the
        invitations it made lapse, but in rooms it owns or moderates."""
        with self.writing() as s, s.begin():
            account_id = s.scalar(
                update(Account)
                .where(Account.name_key == username_key(name))
                .values(is_admin=admin)
                .returning(Account.id)
            )
            if account_id is None:
                raise NoSuchAccountError(f"no account named {name!r}")
            if not admin:
                moderated = select(Membership.room_id).where(
                    Membership.account_id == account_id, Membership.role.in_(MODERATING_ROLES)
                )
                s.execute(
                    delete(RoomInvite).where(
                        RoomInvite.inviter_id == account_id, RoomInvite.room_id.not_in(moderated)
                    )
                )

    def delete_account(self, name: str, *, erase: bool = False) -> AccountRecord:
        """Delete the account, its memberships, invites and bans; its messages stay, under
        its name, unless ``erase``: then every message it sent goes first, in the same
        transaction (an erasure request: nothing of it may be left behind, so the search
        index is compacted too).

        One DELETE ... RETURNING, so of two concurrent deletions exactly one succeeds.
        """
        with self.writing() as s, s.begin():
            if erase:
                sent_by = (
                    select(Account.id)
                    .where(Account.name_key == username_key(name))
                    .scalar_subquery()
                )
                sent = select(Message.id).where(Message.sender_id == sent_by)
                s.execute(_forget_edits(sent))
                s.execute(delete(Message).where(Message.sender_id == sent_by))
                compact_search_index(s.connection())
            a = s.scalars(
                delete(Account).where(Account.name_key == username_key(name)).returning(Account)
            ).first()
            if a is None:
                raise NoSuchAccountError(f"no account named {name!r}")
            return _account_record(a)

    def record_login(self, account_id: int, *, clear_failures: bool = True) -> None:
        """A successful login: stamp it and (unless told not to) clear the failure count."""
        failures = _NO_FAILURES if clear_failures else {}
        with self.writing() as s, s.begin():
            s.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(last_login_at=utcnow(), **failures)
            )

    def record_login_failure(self, account_id: int, window_seconds: int) -> int:
        """Count a failure in the current window (opening a new one if it ran out).

        One UPDATE decides and counts (its SET reads the row as it was), so concurrent
        failures each count once on any database: no read-modify-write in Python.
        """
        now = utcnow()
        expired = or_(
            Account.failures_since.is_(None),
            Account.failures_since <= now - timedelta(seconds=window_seconds),
        )
        with self._writer.begin() as conn:
            count = conn.scalar(
                update(Account)
                .where(Account.id == account_id)
                .values(
                    failures_since=case((expired, now), else_=Account.failures_since),
                    failed_logins=case((expired, 1), else_=Account.failed_logins + 1),
                )
                .returning(Account.failed_logins)
            )
        return count or 0

    # -- failed password checks per client address -----------------------------------

    def address_failures(self, address: str) -> tuple[int, datetime | None]:
        """The address's stored failures and when their window began (0, None if none)."""
        with self.reading() as s:
            row = s.execute(
                select(AddressFailure.failures, AddressFailure.since).where(
                    AddressFailure.address == address
                )
            ).first()
        return (row.failures, row.since) if row else (0, None)

    def record_address_failure(self, address: str, window_seconds: int) -> int:
        """Count a failure from ``address`` in its window (a new one if it ran out).

        One upsert decides and counts, like ``record_login_failure``: its SET reads the
        row as it was, so concurrent failures each count once on either database.
        """
        now = utcnow()
        expired = AddressFailure.since <= now - timedelta(seconds=window_seconds)
        upsert = self._insert(AddressFailure).values(address=address, failures=1, since=now)
        with self._writer.begin() as conn:
            count = conn.scalar(
                upsert.on_conflict_do_update(
                    index_elements=[AddressFailure.address],
                    set_={
                        "since": case((expired, now), else_=AddressFailure.since),
                        "failures": case((expired, 1), else_=AddressFailure.failures + 1),
                    },
                ).returning(AddressFailure.failures)
            )
        return count or 0

    def prune_address_failures(self, window_seconds: int, batch: int = 1000) -> int:
        """Delete up to ``batch`` rows whose window has ended; how many were deleted."""
        ended = select(AddressFailure.address).where(
            AddressFailure.since <= utcnow() - timedelta(seconds=window_seconds)
        )
        with self._writer.begin() as conn:
            result = conn.execute(
                delete(AddressFailure).where(AddressFailure.address.in_(ended.limit(batch)))
            )
        return int(result.rowcount)

    def credential_generations(self, account_ids: Iterable[int]) -> dict[int, int]:
        """Of these ids, the enabled accounts and their credential generations.

        An id missing from the answer was disabled or deleted. The server compares each
        session's generation with this to end sessions an admin or a password change ended.
        """
        ids = set(account_ids)
        if not ids:
            return {}
        with self.reading() as s:
            rows = s.execute(
                select(Account.id, Account.credential_generation).where(
                    Account.id.in_(ids), Account.disabled.is_(False)
                )
            )
            return dict(rows.all())

    # -- rooms ----------------------------------------------------------------------

    def _new_room(
        self,
        s: Session,
        name: str,
        now: datetime,
        creator: int | None = None,
        *,
        private: bool = False,
        topic: str = "",
    ) -> int | None:
        """Insert the room unless the name is taken (even by an uncommitted insert: that
        one is waited for); the new id, or None. Its creator becomes its owner."""
        room_id = s.scalar(
            self._insert(Room)
            .values(name=name, created_at=now, created_by=creator, private=private, topic=topic)
            .on_conflict_do_nothing(index_elements=[Room.name])
            .returning(Room.id)
        )
        if room_id is not None and creator is not None:
            s.execute(
                insert(Membership).values(
                    account_id=creator, room_id=room_id, joined_at=now, role="owner"
                )
            )
        return room_id

    def _check_caps(self, s: Session, creator: int, caps: RoomCaps) -> None:
        """Refuse a new room past the caps; counted under a lock, so no two creations race."""
        if not self._is_sqlite:
            s.execute(select(func.pg_advisory_xact_lock(_ROOM_CREATION_LOCK)))
        if (s.scalar(select(func.count()).select_from(Room)) or 0) >= caps.total:
            raise RoomLimitError(f"the server has the most rooms it allows ({caps.total})")
        mine = select(func.count()).select_from(Room).where(Room.created_by == creator)
        if (s.scalar(mine) or 0) >= caps.per_creator:
            raise RoomLimitError(
                f"you have created the most rooms one account may ({caps.per_creator})"
            )

    def _room_id(self, s: Session, name: str, *, now: datetime) -> int:
        """The room's id, made (by nobody) if missing, whoever else makes it too.

        Looked up first: on PostgreSQL an INSERT that conflicts still uses up an id.
        """
        by_name = select(Room.id).where(Room.name == name)
        room_id = s.scalar(by_name)
        if room_id is None:
            room_id = self._new_room(s, name, now)
        if room_id is None:  # made by another transaction since the lookup
            room_id = s.execute(by_name).scalar_one()
        return room_id

    def _journal(self, s: Session, origin: str, kind: str, **fields: object) -> None:
        """Append a room event in the caller's transaction (see ``RoomEvent``).

        On PostgreSQL the appends are serialized until commit, so events commit in id
        order and a poller that remembers the last id it saw never skips one.
        """
        if not self._is_sqlite:
            s.execute(select(func.pg_advisory_xact_lock(_JOURNAL_LOCK)))
        s.execute(insert(RoomEventRow).values(at_ms=now_ms(), origin=origin, kind=kind, **fields))

    def create_room(
        self,
        name: str,
        *,
        creator_id: int | None = None,
        private: bool = False,
        topic: str = "",
        caps: RoomCaps | None = None,
        origin: str = ADMIN_ORIGIN,
    ) -> int:
        """Make a room; its creator (if any) becomes its owner. The new room's id.

        ``RoomExistsError`` if the name is taken; ``RoomLimitError`` past ``caps``. A
        creator's membership is journaled ("joined"), so the creator's sessions on the
        servers that did not make the room follow it too.
        """
        with self.writing() as s, s.begin():
            if s.scalar(select(Room.id).where(Room.name == name)) is None:
                if creator_id is not None and caps is not None:
                    self._check_caps(s, creator_id, caps)
                room_id = self._new_room(
                    s, name, utcnow(), creator_id, private=private, topic=topic
                )
                if room_id is not None:
                    if creator_id is not None:
                        _, user = self._names(s, room_id, creator_id)
                        self._journal(
                            s, origin, "joined", room=name, account_id=creator_id, user=user
                        )
                    return room_id
        raise RoomExistsError(f"a room named {name!r} already exists")

    def room_id(self, name: str) -> int | None:
        with self.reading() as s:
            return s.scalar(select(Room.id).where(Room.name == name))

    def room(self, name: str) -> RoomRecord | None:
        with self.reading() as s:
            row = s.execute(
                select(Room.id, Room.name, Room.private, Room.topic, Room.created_by).where(
                    Room.name == name
                )
            ).first()
            return RoomRecord(*row) if row else None

    def room_view(self, name: str, account_id: int) -> RoomView | None:
        """The room named ``name`` and the account's role in it; None if there is none."""
        with self.reading() as s:
            row = s.execute(_STANDING, {"name": name, "account": account_id}).first()
        return None if row is None else RoomView(RoomRecord(*row[:5]), row.role)

    def list_rooms(
        self, account_id: int | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[RoomSummary]:
        """Rooms by name (after ``after``, at most ``limit``), each with its member count
        and whether ``account_id`` is in it.

        A private room is listed only to its members; ``account_id`` None (the admin
        tools) lists every room.
        """
        with self.reading() as s:
            counts = (
                select(Membership.room_id, func.count().label("n"))
                .group_by(Membership.room_id)
                .subquery()
            )
            mine = set()
            query = (
                select(Room.id, Room.name, func.coalesce(counts.c.n, 0), Room.topic, Room.private)
                .outerjoin(counts, counts.c.room_id == Room.id)
                .order_by(Room.name)
                .limit(limit)
            )
            if account_id is not None:
                mine = set(
                    s.scalars(select(Membership.room_id).where(Membership.account_id == account_id))
                )
                query = query.where(or_(Room.private.is_(False), Room.id.in_(mine)))
            if after is not None:
                query = query.where(Room.name > after)
            rows = s.execute(query)
            return [
                RoomSummary(name, int(n), rid in mine, topic, private)
                for rid, name, n, topic, private in rows
            ]

    def join_room(
        self, account_id: int, name: str, *, create: bool, caps: RoomCaps | None = None
    ) -> tuple[int, bool]:
        """Make the account a member; returns (room id, whether it was newly joined).

        A room it makes (``create``) is its own (it is the owner), counted against
        ``caps``: ``RoomLimitError`` past them. ``BannedError`` if it is banned. A private
        room it is not in needs an invite (see ``invite``), which joining uses up;
        without one it gets ``NoSuchRoomError``, as for a room that does not exist. So does
        an account banned from a private room it was never told of: banned as a non-member,
        and not invited since.
        """
        now = utcnow()
        missing = NoSuchRoomError(f"no room named {name!r}")
        standing = {"name": name, "account": account_id}
        with self.writing() as s, s.begin():
            room = s.execute(_STANDING, standing).first()
            if room is None:
                if not create:
                    raise missing
                if caps is not None:
                    self._check_caps(s, account_id, caps)
                room_id = self._new_room(s, name, now, account_id)
                if room_id is not None:
                    return room_id, True
                room = s.execute(_STANDING, standing).one()  # made by another transaction
            invited = room.inviter_id is not None
            if room.disclosed is not None:
                if room.private and not (room.disclosed or invited):
                    raise missing
                raise BannedError(f"you are banned from {name!r}")
            if room.role is not None:
                return room.id, False
            if room.private and not invited:
                raise missing
            s.execute(
                delete(RoomInvite).where(
                    RoomInvite.room_id == room.id, RoomInvite.account_id == account_id
                )
            )
            joined = s.scalar(
                self._insert(Membership)
                .values(account_id=account_id, room_id=room.id, joined_at=now)
                .on_conflict_do_nothing(index_elements=[Membership.account_id, Membership.room_id])
                .returning(Membership.room_id)
            )
            return room.id, joined is not None

    @staticmethod
    def _may_invite(s: Session, inviter_id: int, room_id: int) -> bool:
        """Whether the account is an owner or moderator of the room, or a server admin.

        On PostgreSQL the rows read stay locked (FOR SHARE) until commit: a concurrent
        demotion, removal, departure or loss of the admin right waits, then sees (and
        deletes) the invite this transaction stores. SQLite serializes writes anyway.
        """
        role = s.scalar(
            select(Membership.role)
            .where(Membership.account_id == inviter_id, Membership.room_id == room_id)
            .with_for_update(read=True)
        )
        if role in MODERATING_ROLES:
            return True
        admin = select(Account.is_admin).where(Account.id == inviter_id)
        return bool(s.scalar(admin.with_for_update(read=True)))

    @staticmethod
    def _lapse_invites_by(s: Session, inviter_id: int, room_id: int) -> None:
        """The account is no longer owner or moderator of the room: its invitations there
        lapse for good (one made as a server admin too: it was made as the room's)."""
        s.execute(
            delete(RoomInvite).where(
                RoomInvite.room_id == room_id, RoomInvite.inviter_id == inviter_id
            )
        )

    def leave_room(self, account_id: int, room_id: int) -> bool:
        """The account leaves the room (its invitations there lapse); False if not in it."""
        with self.writing() as s, s.begin():
            result = s.execute(
                delete(Membership).where(
                    Membership.account_id == account_id, Membership.room_id == room_id
                )
            )
            self._lapse_invites_by(s, account_id, room_id)
            return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def _role(s: Session, account_id: int, room_id: int) -> str | None:
        return s.scalar(
            select(Membership.role).where(
                Membership.account_id == account_id, Membership.room_id == room_id
            )
        )

    def role_of(self, account_id: int, room_id: int) -> str | None:
        """The account's role in the room: owner, moderator or member; None if not in it."""
        with self.reading() as s:
            return self._role(s, account_id, room_id)

    def room_members(self, room_id: int) -> list[RoomMemberRecord]:
        """Every member with its role, by name."""
        with self.reading() as s:
            rows = s.execute(
                select(Account.id, Account.name, Membership.role)
                .join(Membership, Membership.account_id == Account.id)
                .where(Membership.room_id == room_id)
                .order_by(Account.name_key)
            )
            return [RoomMemberRecord(aid, name, role) for aid, name, role in rows]

    def _names(self, s: Session, room_id: int, account_id: int | None = None) -> tuple[str, str]:
        """The room's name and the account's (``""`` for no account); NoSuch*Error if gone."""
        room = s.scalar(select(Room.name).where(Room.id == room_id))
        if room is None:
            raise NoSuchRoomError(f"no room with id {room_id}")
        if account_id is None:
            return room, ""
        user = s.scalar(select(Account.name).where(Account.id == account_id))
        if user is None:
            raise NoSuchAccountError(f"no account with id {account_id}")
        return room, user

    def invite(self, room_id: int, account_id: int, inviter_id: int, *, origin: str) -> bool:
        """Invite the account into the room (a member already: nothing happens); False, and
        nothing done, if the inviter may not invite there (see ``_may_invite``).

        The invite lasts until used, or until the inviter is no longer an owner or moderator
        of the room (demoted, removed, gone, or no longer a server admin): then it is
        deleted, and a later promotion brings it not back. A newer one replaces it. It
        lifts no ban.
        """
        now = utcnow()
        with self.writing() as s, s.begin():
            room, user = self._names(s, room_id, account_id)
            if self._role(s, account_id, room_id) is not None:
                return True
            if not self._may_invite(s, inviter_id, room_id):
                return False
            _, by = self._names(s, room_id, inviter_id)
            upsert = self._insert(RoomInvite).values(
                room_id=room_id, account_id=account_id, inviter_id=inviter_id, at=now
            )
            s.execute(
                upsert.on_conflict_do_update(
                    index_elements=[RoomInvite.room_id, RoomInvite.account_id],
                    set_={"inviter_id": inviter_id, "at": now},
                )
            )
            topic = s.scalar(select(Room.topic).where(Room.id == room_id))
            self._journal(
                s,
                origin,
                "invited",
                room=room,
                account_id=account_id,
                user=user,
                by=by,
                detail=topic,
            )
            return True

    def set_topic(self, room_id: int, topic: str, *, by: str, origin: str) -> None:
        with self.writing() as s, s.begin():
            room = s.scalar(
                update(Room).where(Room.id == room_id).values(topic=topic).returning(Room.name)
            )
            if room is None:
                raise NoSuchRoomError(f"no room with id {room_id}")
            self._journal(s, origin, "topic", room=room, by=by, detail=topic)

    def set_role(self, room_id: int, account_id: int, role: str, *, by: str, origin: str) -> bool:
        """Give a member a role (owner, moderator or member); False if not a member. A
        plain member's invitations there lapse.

        ``LastOwnerError`` for the room's only owner, unless the role is owner: a room
        never loses its last owner to a role change. The owners are locked while counted
        (on PostgreSQL), so two owners demoting each other at once cannot both succeed.
        """
        with self.writing() as s, s.begin():
            if role != "owner":
                owners = select(Membership.account_id).where(
                    Membership.room_id == room_id, Membership.role == "owner"
                )
                if s.scalars(owners.with_for_update()).all() == [account_id]:
                    room, user = self._names(s, room_id, account_id)
                    raise LastOwnerError(
                        f"{user} is the only owner of {room!r}; make another member owner first"
                    )
            changed = s.scalar(
                update(Membership)
                .where(Membership.room_id == room_id, Membership.account_id == account_id)
                .values(role=role)
                .returning(Membership.account_id)
            )
            if changed is None:
                return False
            if role not in MODERATING_ROLES:
                self._lapse_invites_by(s, account_id, room_id)
            room, user = self._names(s, room_id, account_id)
            self._journal(
                s, origin, "role", room=room, account_id=account_id, user=user, by=by, detail=role
            )
            return True

    def remove_member(
        self, room_id: int, account_id: int, *, by: str, reason: str, ban: bool, origin: str
    ) -> Removed:
        """Kick the account out of the room (and drop its invite, and lapse the ones it
        made there); with ``ban`` also keep it out until ``unban``. A kick of a non-member
        does nothing; a ban of one is only stored (it was never in the room, so nobody is
        told: no journal row)."""
        now = utcnow()
        with self.writing() as s, s.begin():
            room, user = self._names(s, room_id, account_id)
            was_member = s.scalar(
                delete(Membership)
                .where(Membership.room_id == room_id, Membership.account_id == account_id)
                .returning(Membership.account_id)
            )
            if was_member is None and not ban:
                return Removed.NOTHING
            s.execute(
                delete(RoomInvite).where(
                    RoomInvite.room_id == room_id, RoomInvite.account_id == account_id
                )
            )
            if ban:
                values = {"by_name": by, "reason": reason, "at": now}
                upsert = self._insert(RoomBan).values(
                    room_id=room_id,
                    account_id=account_id,
                    disclosed=was_member is not None,
                    **values,
                )
                told = or_(RoomBan.disclosed, upsert.excluded.disclosed)  # told once is told
                s.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[RoomBan.room_id, RoomBan.account_id],
                        set_={**values, "disclosed": told},
                    )
                )
            if was_member is None:
                return Removed.BANNED
            self._lapse_invites_by(s, account_id, room_id)
            self._journal(
                s,
                origin,
                "kicked",
                room=room,
                account_id=account_id,
                user=user,
                by=by,
                detail=reason,
                flag=ban,
            )
            return Removed.MEMBER

    def unban(self, room_id: int, account_id: int, *, origin: str) -> bool:
        """Lift a ban; False if there was none. No journal event: nobody is told."""
        with self.writing() as s, s.begin():
            result = s.execute(
                delete(RoomBan).where(RoomBan.room_id == room_id, RoomBan.account_id == account_id)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def room_events_after(
        self, after_id: int, *, not_from: str, limit: int = 500
    ) -> list[RoomEvent]:
        """Journal rows after ``after_id`` that another origin wrote, oldest first."""
        e = RoomEventRow
        query = (
            select(
                e.id,
                e.at_ms,
                e.origin,
                e.kind,
                e.room,
                e.account_id,
                e.user,
                e.by,
                e.message_id,
                e.peer_id,
                e.detail,
                e.flag,
            )
            .where(e.id > after_id, e.origin != not_from)
            .order_by(e.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [RoomEvent._make(row) for row in conn.execute(query)]

    def last_room_event_id(self) -> int:
        """Where a new poller starts: the newest journal row's id (0 if none)."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.max(RoomEventRow.id))) or 0)

    def prune_room_events(self, before_ms: int, batch: int = 1000) -> int:
        """Delete up to ``batch`` journal rows older than ``before_ms``; how many went."""
        old = select(RoomEventRow.id).where(RoomEventRow.at_ms < before_ms).limit(batch)
        with self._writer.begin() as conn:
            result = conn.execute(delete(RoomEventRow).where(RoomEventRow.id.in_(old)))
        return int(result.rowcount)

    def login_snapshot(self, account_id: int, history: int, peers: int) -> LoginSnapshot:
        """The account's rooms, their latest ``history`` messages and members, and its
        ``peers`` most recent direct conversations (``history`` messages each).

        One connection and prepared statements only: after bcrypt this is most of a
        login's work, and building a fresh ORM query per room cost more than running it.
        Each page is an index range: ``(room_id, id)`` or ``(pair_low, pair_high, id)``.
        """
        with self.engine.connect() as conn:
            rooms: list[tuple[int, str]] = []
            room_reads: dict[int, int] = {}
            for rid, name, read_up_to in conn.execute(_ROOMS_OF, {"account_id": account_id}):
                rooms.append((rid, name))
                room_reads[rid] = read_up_to
            room_ids = [rid for rid, _ in rooms]
            empty = Page([], False)
            room_pages = {
                rid: _latest(conn, _LATEST_IN_ROOM, {"room_id": rid}, history) if history else empty
                for rid in room_ids
            }
            recent: list[tuple[str, Page]] = []
            peer_reads: dict[str, int] = {}
            if peers:
                found = conn.execute(_RECENT_PEERS, {"account_id": account_id, "limit": peers})
                for peer_id, name, read_up_to in found.all():
                    peer_reads[name] = read_up_to
                    low, high = _pair(account_id, peer_id)
                    page = (
                        _latest(conn, _LATEST_DIRECT, {"low": low, "high": high}, history)
                        if history
                        else empty
                    )
                    recent.append((name, page))
            members: dict[int, list[RoomMemberRecord]] = {rid: [] for rid in room_ids}
            if room_ids:
                rows = conn.execute(_MEMBERS_OF_ROOMS, {"room_ids": room_ids})
                for rid, member_id, name, role in rows:
                    members[rid].append(RoomMemberRecord(member_id, name, role))
        return LoginSnapshot(rooms, room_pages, recent, members, room_reads, peer_reads)

    # -- messages -------------------------------------------------------------------

    @staticmethod
    def one_statement_batch(available: int) -> int:
        """The largest batch of at most ``available`` messages that one INSERT stores.

        Each statement costs the message writer a wait for the GIL (sqlite3 lets go of
        it), so a writer with many messages queued takes this many and leaves the rest.
        """
        return next((n for n in _INSERT_CHUNKS if n <= available), 0)

    def insert_messages(self, batch: Sequence[NewMessage]) -> list[StoredMessage]:
        """Store a batch, all or nothing; ids come back in the batch's order.

        On SQLite a batch of room messages of a ``one_statement_batch`` size is one
        INSERT and nothing else: a statement is atomic on its own, so no BEGIN or
        COMMIT. Every statement costs the message writer a wait for the GIL behind the
        reader threads (sqlite3 lets go of it), and those waits, not SQLite's work, were
        most of the writer's time. Other batches (direct messages, which also update
        ``direct_peers``, or other sizes) run in a write transaction.

        On PostgreSQL every batch is a transaction that first locks its conversations
        (``_lock_conversations``), then takes its ids, inserts and commits: two writers
        (two server nodes) on one conversation queue up, so its ids commit in id order
        and a reader never sees a higher id before a lower one that is still coming.
        The whole batch is one INSERT of unnested arrays (``_INSERT_UNNESTED``).
        """
        if not batch:
            return []
        ts = now_ms()
        rows = [
            (
                ts,
                m.room_id,
                *(
                    _pair(m.sender_id, m.recipient_id)
                    if m.recipient_id is not None
                    else (None, None)
                ),
                m.sender_id,
                m.sender_name,
                m.recipient_name,
                m.text,
            )
            for m in batch
        ]
        peers = _latest_per_pair(batch)
        shared = [(index, m) for index, m in enumerate(batch) if m.file is not None]
        if (
            self._is_sqlite
            and not peers
            and not shared
            and self.one_statement_batch(len(rows)) == len(rows)
        ):
            with self._single.connect() as conn:
                ids = self._insert_chunk(conn, rows)
        elif self._is_sqlite:
            with self._writer.begin() as conn:
                ids = []
                done = 0
                while done < len(rows):
                    size = self.one_statement_batch(len(rows) - done)
                    ids += self._insert_chunk(conn, rows[done : done + size])
                    done += size
                self._update_peers(conn, peers, ids)
                self._insert_files(conn, shared, ids, ts)
        else:
            columns = dict(zip(_INSERT_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
            with self._writer.begin() as conn:
                self._lock_conversations(conn, batch)
                ids = sorted(conn.execute(_INSERT_UNNESTED, columns).scalars())
                self._update_peers(conn, peers, ids)
                self._insert_files(conn, shared, ids, ts)
        return [
            StoredMessage(
                i, ts, m.sender_name, m.text, m.room_name, m.recipient_name, None, False, m.file
            )
            for i, m in zip(ids, batch, strict=True)
        ]

    @staticmethod
    def _insert_files(
        conn: Connection, shared: list[tuple[int, NewMessage]], ids: list[int], ts: int
    ) -> None:
        """Write the files of a batch's messages (``shared``: batch index and message) and
        point the messages at them, in the batch's transaction.

        Separate statements, not columns of the batch's INSERT, so that the INSERT of
        ordinary messages (nearly all of them) stays as it is; a file costs two more.
        """
        if not shared:
            return
        conn.execute(
            insert(File),
            [
                {
                    "id": m.file.id,
                    "sha256": m.file.sha256,
                    "size": m.file.size,
                    "name": m.file.name,
                    "mime": m.file.mime,
                    "account_id": m.sender_id,
                    "created_ms": ts,
                }
                for _, m in shared
                if m.file is not None
            ],
        )
        conn.execute(
            update(Message)
            .where(Message.id == bindparam("message"))
            .values(file_id=bindparam("file")),
            [{"message": ids[index], "file": m.file.id} for index, m in shared if m.file],
        )

    @staticmethod
    def _insert_chunk(conn: Connection, rows: list[tuple[object, ...]]) -> list[int]:
        """One multi-row INSERT on SQLite, compiled once per chunk size; the new ids.

        Building the parameters per row in SQLAlchemy cost more than SQLite's insert, so
        the statement runs through the driver. The ids are the ones up to the last
        rowid: the statement holds the write lock, and its rows get consecutive ids.
        Reading them back with RETURNING would be a sqlite3 step (and a GIL wait) per row.
        """
        sql = _sqlite_chunk_sql(len(rows))
        result = conn.exec_driver_sql(sql, tuple(value for row in rows for value in row))
        last = result.lastrowid
        return list(range(last - len(rows) + 1, last + 1))

    @staticmethod
    def _lock_conversations(conn: Connection, batch: Sequence[NewMessage]) -> None:
        """Lock the rows that stand for the batch's conversations until commit.

        A room's row stands for the room, and the two accounts' rows for a direct
        conversation. ``FOR NO KEY UPDATE`` excludes another writer but not the key-share
        locks that foreign-key checks take. Rows are locked in id order, rooms before
        accounts, so two writers cannot deadlock.
        """
        rooms = sorted({m.room_id for m in batch if m.room_id is not None})
        people = sorted(
            {a for m in batch if m.recipient_id is not None for a in (m.sender_id, m.recipient_id)}
        )
        for table, ids in ((Room, rooms), (Account, people)):
            if ids:
                conn.execute(
                    select(table.id)
                    .where(table.id.in_(ids))
                    .order_by(table.id)
                    .with_for_update(key_share=True)
                )

    def _update_peers(
        self, conn: Connection, peers: dict[tuple[int, int], int], ids: list[int]
    ) -> None:
        """Record each direct conversation's newest message (``peers`` holds batch indexes).

        An upsert, so a pair's first message cannot collide with another writer's.
        """
        if not peers:
            return
        upsert = self._insert(DirectPeer)
        upsert = upsert.on_conflict_do_update(
            index_elements=[DirectPeer.account_id, DirectPeer.peer_id],
            set_={"last_message_id": upsert.excluded.last_message_id},
        )
        conn.execute(
            upsert,
            [
                {"account_id": account_id, "peer_id": peer_id, "last_message_id": ids[index]}
                for (account_id, peer_id), index in sorted(peers.items())
            ],
        )

    def room_history(
        self,
        room_id: int,
        *,
        before: Bound | None = None,
        after: Bound | None = None,
        limit: int = 50,
        newest: bool = False,
    ) -> Page:
        """Messages strictly between the bounds given: the oldest ``limit`` of them when
        there is an ``after``, unless ``newest``; otherwise the newest ``limit``."""
        return self._page([Message.room_id == room_id], before, after, limit, newest)

    def direct_history(
        self,
        a: int,
        b: int,
        *,
        before: Bound | None = None,
        after: Bound | None = None,
        limit: int = 50,
        newest: bool = False,
    ) -> Page:
        """As ``room_history``, for the direct conversation of accounts ``a`` and ``b``."""
        low, high = _pair(a, b)
        return self._page(
            [Message.pair_low == low, Message.pair_high == high], before, after, limit, newest
        )

    def _page(
        self,
        where: list[object],
        before: Bound | None,
        after: Bound | None,
        limit: int,
        newest: bool,
    ) -> Page:
        query = select(*MESSAGE_COLUMNS).select_from(MESSAGE_FROM)
        query = query.where(*where)  # type: ignore[arg-type]
        if isinstance(before, At):
            query = query.where(Message.ts_ms < before.ts_ms)
        elif before is not None:
            query = query.where(Message.id < before)
        if isinstance(after, At):
            query = query.where(Message.ts_ms > after.ts_ms)
        elif after is not None:
            query = query.where(Message.id > after)
        oldest_first = after is not None and not newest
        query = query.order_by(Message.id.asc() if oldest_first else Message.id.desc())
        # Core, streamed: rows past the page's cut are never fetched into memory (the
        # ORM would fetch every row first; PostgreSQL needs a server-side cursor).
        with (
            self.engine.connect() as conn,
            conn.execution_options(stream_results=True).execute(query.limit(limit + 1)) as rows,
        ):
            return _page_of(rows, limit, newest_first=not oldest_first)

    def search(
        self,
        account_id: int,
        q: str,
        *,
        room_id: int | None = None,
        peer_id: int | None = None,
        before: int | None = None,
        limit: int = 20,
    ) -> tuple[list[StoredMessage], bool]:
        """Newest first; (matches, more). Only what account_id may read: with room_id, that
        room only if a member now (else []); with peer_id, the direct conversation of the
        two; with neither, every room the account is a member of now plus its direct
        conversations. Deleted messages never match. q is the user's raw text: words and
        "quoted phrases", all required, whole-word, case- and accent-insensitive; q
        without any word gives [] (see search.py). Like a history page, the matches end
        early (with ``more``) once their text passes ``PAGE_TEXT_CHARS``."""
        terms = parse_terms(q)
        if not terms:
            return [], False
        rooms = select(Membership.room_id).where(Membership.account_id == account_id)
        if peer_id is not None:
            low, high = _pair(account_id, peer_id)
            readable = and_(Message.pair_low == low, Message.pair_high == high)
        elif room_id is not None:
            readable = and_(Message.room_id == room_id, Message.room_id.in_(rooms))
        else:
            readable = or_(
                Message.room_id.in_(rooms),
                Message.pair_low == account_id,
                Message.pair_high == account_id,
            )
        query = (
            select(*MESSAGE_COLUMNS)
            .select_from(MESSAGE_FROM)
            .where(readable, Message.deleted.is_(False))
        )
        query = matching(query, terms, sqlite=self._is_sqlite, before=before)
        with self.engine.connect() as conn, conn.execute(query.limit(limit + 1)) as rows:
            page = _page_of(rows, limit, newest_first=False)
        return page.messages, page.more

    def activity(
        self, account_id: int, *, after_ms: int, before_ms: int, limit: int, newest: bool
    ) -> list[Activity]:
        """The account's rooms and direct chats whose latest message is strictly between
        the two moments, by that message's time: the oldest ``limit``, or the newest.

        A room's latest message is one index lookup per room, ``(room_id, id)``; a direct
        chat's is its ``direct_peers`` row, kept by the message writer.
        """
        latest = aliased(Message)
        room_latest = (
            select(func.max(latest.id))
            .where(latest.room_id == Room.id)
            .correlate(Room)
            .scalar_subquery()
        )
        window = (Message.ts_ms > after_ms, Message.ts_ms < before_ms)
        by_time = Message.ts_ms.desc() if newest else Message.ts_ms.asc()
        rooms = (
            select(Room.name, null(), Message.ts_ms)
            .join(Membership, Membership.room_id == Room.id)
            .join(Message, Message.id == room_latest)
            .where(Membership.account_id == account_id, *window)
        )
        peers = (
            select(null(), Account.name, Message.ts_ms)
            .select_from(DirectPeer)
            .join(Account, Account.id == DirectPeer.peer_id)
            .join(Message, Message.id == DirectPeer.last_message_id)
            .where(DirectPeer.account_id == account_id, *window)
        )
        found: list[Activity] = []
        with self.reading() as s:
            for query in (rooms, peers):
                rows = s.execute(query.order_by(by_time, Message.id).limit(limit))
                found += [Activity(room, peer, ts) for room, peer, ts in rows]
        found.sort(key=lambda a: a.last_ts_ms, reverse=newest)
        del found[limit:]
        found.sort(key=lambda a: a.last_ts_ms)
        return found

    def iter_message_rows(
        self,
        *,
        room_id: int | None = None,
        visible_to: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        batch_size: int = 5000,
    ) -> Iterator[MessageRow]:
        """Stream messages in id order, in flat memory: one room's, or all one account sees.

        "All one account sees" is its current rooms plus its direct conversations. Rows
        are plain tuples (``MessageRow``): exports read millions, and building an object
        per row would cost more than reading it.
        """
        query = select(*MESSAGE_COLUMNS).select_from(MESSAGE_FROM)
        if room_id is not None:
            query = query.where(Message.room_id == room_id)
        if visible_to is not None:
            rooms = select(Membership.room_id).where(Membership.account_id == visible_to)
            query = query.where(
                or_(
                    Message.room_id.in_(rooms),
                    Message.pair_low == visible_to,
                    Message.pair_high == visible_to,
                )
            )
        if since_ms is not None:
            query = query.where(Message.ts_ms >= since_ms)
        if until_ms is not None:
            query = query.where(Message.ts_ms < until_ms)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(
                query.order_by(Message.id)
            )
            yield from result

    def message(self, message_id: int) -> StoredMessage | None:
        ref = self.message_ref(message_id)
        return ref.message if ref else None

    def message_ref(self, message_id: int) -> MessageRef | None:
        """The message and the ids of its conversation (who may see or change it)."""
        query = (
            select(
                *MESSAGE_COLUMNS,
                Message.sender_id,
                Message.room_id,
                Message.pair_low,
                Message.pair_high,
            )
            .select_from(MESSAGE_FROM)
            .where(Message.id == message_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        *_, sender_id, room_id, low, high = row
        pair = (low, high) if low is not None else None
        return MessageRef(message_from_row(row), sender_id, room_id, pair)

    def _conversation(
        self,
        s: Session,
        sender_id: int | None,
        room_id: int | None,
        low: int | None,
        high: int | None,
    ) -> dict[str, object]:
        """A message's conversation as journal fields: the room's name, or the pair as
        (account_id: the sender, peer_id: the other party)."""
        if room_id is not None or low is None or high is None:  # room_or_pair: a room
            return {"room": s.scalar(select(Room.name).where(Room.id == room_id))}
        sender = low if sender_id is None else sender_id
        return {"account_id": sender, "peer_id": high if sender == low else low}

    def edit_message(
        self, message_id: int, text: str, *, edited_ms: int, by: str, origin: str
    ) -> bool:
        """Replace the message's text; False if it is gone or deleted."""
        with self.writing() as s, s.begin():
            row = s.execute(
                update(Message)
                .where(Message.id == message_id, Message.deleted.is_(False))
                .values(text=text, edited_ms=edited_ms)
                .returning(Message.sender_id, Message.room_id, Message.pair_low, Message.pair_high)
            ).first()
            if row is None:
                return False
            where = self._conversation(s, *row)
            self._journal(s, origin, "edited", message_id=message_id, by=by, detail=text, **where)
            return True

    def delete_message(self, message_id: int, *, by: str, origin: str) -> bool:
        """Delete the message's text (the row stays, with text '' and ``deleted``), the
        text its edits left in the journal, and its file (``sweep_files`` then collects
        it); False if it is gone or deleted already.

        On SQLite ``secure_delete`` (db.py) zeroes the space the text took in the file.
        """
        with self.writing() as s, s.begin():
            row = s.execute(
                update(Message)
                .where(Message.id == message_id, Message.deleted.is_(False))
                .values(text="", deleted=True, edited_ms=None, file_id=None)
                .returning(Message.sender_id, Message.room_id, Message.pair_low, Message.pair_high)
            ).first()
            if row is None:
                return False
            s.execute(_forget_edits([message_id]))
            where = self._conversation(s, *row)
            self._journal(s, origin, "deleted", message_id=message_id, by=by, **where)
        self.search_index_stale = True
        return True

    def mark_read(
        self,
        account_id: int,
        up_to: int,
        *,
        room_id: int | None = None,
        peer_id: int | None = None,
        origin: str,
    ) -> int | None:
        """Move the account's read marker in a room or a direct conversation forward to
        ``up_to``, at most to the conversation's newest message; the new marker, or None
        if it did not move (then nothing is journaled).

        Each UPDATE moves the marker only if it is behind, so concurrent marks by two
        devices cannot move it back, on either database.
        """
        if (room_id is None) == (peer_id is None):
            raise ValueError("mark_read needs exactly one of room_id and peer_id")
        with self.writing() as s, s.begin():
            if room_id is not None:
                newest = s.scalar(select(func.max(Message.id)).where(Message.room_id == room_id))
                target = min(up_to, newest or 0)
                moved = s.scalar(
                    update(Membership)
                    .where(
                        Membership.account_id == account_id,
                        Membership.room_id == room_id,
                        Membership.read_up_to < target,
                    )
                    .values(read_up_to=target)
                    .returning(Membership.read_up_to)
                )
                where: dict[str, object] = {
                    "room": s.scalar(select(Room.name).where(Room.id == room_id))
                }
            else:
                target_sql = case(
                    (DirectPeer.last_message_id < up_to, DirectPeer.last_message_id),
                    else_=up_to,
                )
                moved = s.scalar(
                    update(DirectPeer)
                    .where(
                        DirectPeer.account_id == account_id,
                        DirectPeer.peer_id == peer_id,
                        DirectPeer.read_up_to < target_sql,
                    )
                    .values(read_up_to=target_sql)
                    .returning(DirectPeer.read_up_to)
                )
                where = {"peer_id": peer_id}
            if moved is None:
                return None
            self._journal(s, origin, "read", account_id=account_id, message_id=moved, **where)
            return int(moved)

    def purge_messages(
        self, before_ms: int, *, room_id: int | None = None, batch: int = 1000
    ) -> int:
        """Delete up to ``batch`` of the oldest messages older than ``before_ms`` (in one
        room, or everywhere), in a short transaction of their own; how many were deleted.

        The caller loops until it gets 0, so a purge of millions never holds the write
        lock for long. Oldest first by id (ids follow time), which an index walks.
        """
        old = select(Message.id).where(Message.ts_ms < before_ms)
        if room_id is not None:
            old = old.where(Message.room_id == room_id)
        with self._writer.begin() as conn:
            ids = list(conn.scalars(old.order_by(Message.id).limit(batch)))
            if ids:
                conn.execute(_forget_edits(ids))
                conn.execute(delete(Message).where(Message.id.in_(ids)))
        if ids:
            self.search_index_stale = True
        return len(ids)

    def compact_search_index(self) -> None:
        """Rewrite the search index without what deleted messages left in it (see
        search.py). It rewrites the whole index in one write transaction (about 1.5 s per
        million messages: docs/performance.md)."""
        self.search_index_stale = False  # before: a deletion meanwhile makes it stale again
        try:
            with self._writer.begin() as conn:
                compact_search_index(conn)
        except BaseException:
            self.search_index_stale = True
            raise

    # -- files ----------------------------------------------------------------------

    def file_bytes(self, account_id: int) -> int:
        """The size of the live files the account uploaded (those a message shares): what
        counts against its quota."""
        query = select(func.coalesce(func.sum(File.size), 0)).where(
            File.account_id == account_id, _FILE_SHARED
        )
        with self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def readable_file(self, account_id: int, file_id: str) -> StoredFile | None:
        """The file, if the account may read the conversation of the (undeleted) message
        that shares it now: a member of its room, or a party to its direct chat."""
        member = (
            select(Membership.room_id)
            .where(Membership.account_id == account_id, Membership.room_id == Message.room_id)
            .exists()
        )
        query = (
            select(File.id, File.name, File.size, File.sha256, File.mime)
            .join(Message, Message.file_id == File.id)
            .where(
                File.id == file_id,
                Message.deleted.is_(False),
                or_(member, Message.pair_low == account_id, Message.pair_high == account_id),
            )
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return StoredFile(*row) if row else None

    def sweep_files(self, limit: int = 1000) -> list[str]:
        """Drop up to ``limit`` file rows that no message refers to (deleted, purged or
        erased messages), in a short transaction; the SHA-256s no remaining row uses,
        whose blobs may go (see ``blobs.sweep_unreferenced``)."""
        with self._writer.begin() as conn:
            ids = list(conn.scalars(select(File.id).where(~_FILE_SHARED).limit(limit)))
            if not ids:
                return []
            gone = set(
                conn.scalars(
                    delete(File).where(File.id.in_(ids), ~_FILE_SHARED).returning(File.sha256)
                )
            )
            if not gone:
                return []
            kept = set(conn.scalars(select(File.sha256).where(File.sha256.in_(gone))))
        return sorted(gone - kept)

    def has_unreferenced_files(self) -> bool:
        """Whether ``sweep_files`` has anything left to drop."""
        with self.engine.connect() as conn:
            return conn.scalar(select(File.id).where(~_FILE_SHARED).limit(1)) is not None

    def shas_in_use(self, shas: Iterable[str]) -> set[str]:
        """Those of ``shas`` that some file row uses (the others' blobs are orphans)."""
        wanted = set(shas)
        if not wanted:
            return set()
        with self.engine.connect() as conn:
            return set(conn.scalars(select(File.sha256).where(File.sha256.in_(wanted))))

    def message_count(self) -> int:
        with self.reading() as s:
            return int(s.scalar(select(func.count()).select_from(Message)) or 0)

    def clear_login_failures(self, name: str) -> None:
        """Lift the account's login throttle (its failure count); the password stays."""
        self._update_account(name, failed_logins=0, failures_since=None)


__all__ = [
    "AccountRecord",
    "Activity",
    "At",
    "BannedError",
    "Bound",
    "MessageRef",
    "MessageRow",
    "NameTakenError",
    "NewMessage",
    "NoSuchAccountError",
    "NoSuchRoomError",
    "Page",
    "RoomEvent",
    "RoomExistsError",
    "RoomMemberRecord",
    "RoomRecord",
    "RoomSummary",
    "Store",
    "StoreError",
    "StoredFile",
    "StoredMessage",
    "message_from_row",
    "new_file_id",
]
