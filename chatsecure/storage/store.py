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

import functools
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
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from chatsecure.names import username_key
from chatsecure.storage.db import single_statement_engine, write_engine
from chatsecure.storage.models import (
    Account,
    AddressFailure,
    DirectPeer,
    Membership,
    Message,
    Room,
)


class StoreError(Exception):
    """A request the store refuses; the message says why in the user's terms."""


class NameTakenError(StoreError):
    pass


class RoomLimitError(StoreError):
    """A room was not created: the server, or its creator, has all the rooms allowed."""


@dataclass(frozen=True, slots=True)
class RoomCaps:
    """How many rooms there may be, and how many one account may create."""

    total: int
    per_creator: int


# PostgreSQL: one advisory lock serializes room creation, so the caps' counts cannot race
# (rooms are made rarely). SQLite's BEGIN IMMEDIATE serializes every write already.
_ROOM_CREATION_LOCK = 0x63687372_6F6F6D73  # "chsrooms"


class NoSuchAccountError(StoreError):
    pass


class NoSuchRoomError(StoreError):
    pass


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


@dataclass(frozen=True, slots=True)
class RoomSummary:
    name: str
    members: int
    joined: bool


# The two per-message records are NamedTuples: as immutable as frozen dataclasses, and
# three times cheaper to build, which the message writer does for every message.


class NewMessage(NamedTuple):
    """A message to store: to a room (``room_id``) or to an account (``recipient_id``)."""

    sender_id: int
    sender_name: str
    text: str
    room_id: int | None = None
    room_name: str | None = None
    recipient_id: int | None = None
    recipient_name: str | None = None


class StoredMessage(NamedTuple):
    id: int
    ts_ms: int
    sender: str
    text: str
    room: str | None = None
    to: str | None = None


# (id, ts_ms, sender, text, room, to): a StoredMessage without the object.
MessageRow = tuple[int, int, str, str, str | None, str | None]


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


# The INSERT constructs of the databases the store runs on: both have ON CONFLICT.
_DIALECT_INSERTS: dict[str, Callable[..., sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


# The columns of a StoredMessage, in its field order (the room by name: joined to rooms).
MESSAGE_COLUMNS = (
    Message.id,
    Message.ts_ms,
    Message.sender_name,
    Message.text,
    Room.name,
    Message.recipient_name,
)

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
    .outerjoin(Room, Room.id == Message.room_id)
    .where(Message.room_id == bindparam("room_id"))
    .order_by(Message.id.desc())
    .limit(bindparam("limit"))
)
_LATEST_DIRECT = (
    select(*MESSAGE_COLUMNS)
    .outerjoin(Room, Room.id == Message.room_id)
    .where(Message.pair_low == bindparam("low"), Message.pair_high == bindparam("high"))
    .order_by(Message.id.desc())
    .limit(bindparam("limit"))
)
_ROOMS_OF = (
    select(Room.id, Room.name)
    .join(Membership, Membership.room_id == Room.id)
    .where(Membership.account_id == bindparam("account_id"))
    .order_by(Room.name)
)
_RECENT_PEERS = (
    select(Account.id, Account.name)
    .join(DirectPeer, DirectPeer.peer_id == Account.id)
    .where(DirectPeer.account_id == bindparam("account_id"))
    .order_by(DirectPeer.last_message_id.desc())
    .limit(bindparam("limit"))
)
_MEMBERS_OF_ROOMS = (
    select(Membership.room_id, Account.id, Account.name)
    .join(Account, Membership.account_id == Account.id)
    .where(Membership.room_id.in_(bindparam("room_ids", expanding=True)))
    .order_by(Account.name_key)
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

    ``rooms`` are (id, name) by name; ``room_pages`` and ``members`` are keyed by room id
    (members as (account id, name), by name); ``peers`` are the most recently active
    direct-message peers, newest first, each with the latest page of that conversation.
    """

    rooms: list[tuple[int, str]]
    room_pages: dict[int, Page]
    peers: list[tuple[str, Page]]
    members: dict[int, list[tuple[int, str]]]


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
        messages.append(StoredMessage(*row))
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
        self, accounts: Sequence[tuple[str, str]], default_rooms: Iterable[str]
    ) -> None:
        """Create (name, password_hash) accounts in the default rooms; all or none.

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
            }
            for key, (name, pw_hash) in sorted(by_key.items())
        ]
        new_accounts = (
            self._insert(Account)
            .on_conflict_do_nothing(index_elements=[Account.name_key])
            .returning(Account.id, Account.name_key)
        )
        with self.writing() as s, s.begin():
            room_ids = [
                self._room_id(s, name, create=True, now=now) for name in sorted(set(default_rooms))
            ]
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

    def create_account(self, name: str, password_hash: str, default_rooms: Iterable[str]) -> None:
        self.create_accounts([(name, password_hash)], default_rooms)

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

    def delete_account(self, name: str) -> AccountRecord:
        """Delete the account and its memberships; its messages stay, under its name.

        One DELETE ... RETURNING, so of two concurrent deletions exactly one succeeds.
        """
        with self.writing() as s, s.begin():
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
        self, s: Session, name: str, now: datetime, creator: int | None = None
    ) -> int | None:
        """Insert the room unless the name is taken (even by an uncommitted insert: that
        one is waited for); the new id, or None."""
        return s.scalar(
            self._insert(Room)
            .values(name=name, created_at=now, created_by=creator)
            .on_conflict_do_nothing(index_elements=[Room.name])
            .returning(Room.id)
        )

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

    def _room_id(
        self,
        s: Session,
        name: str,
        *,
        create: bool,
        now: datetime,
        creator: int | None = None,
        caps: RoomCaps | None = None,
    ) -> int:
        """The room's id; with ``create`` it is made if missing, whoever else makes it too.

        Looked up first: on PostgreSQL an INSERT that conflicts still uses up an id.
        A room made for ``creator`` counts against ``caps``.
        """
        by_name = select(Room.id).where(Room.name == name)
        room_id = s.scalar(by_name)
        if room_id is not None:
            return room_id
        if not create:
            raise NoSuchRoomError(f"no room named {name!r}")
        if creator is not None and caps is not None:
            self._check_caps(s, creator, caps)
        room_id = self._new_room(s, name, now, creator)
        if room_id is None:  # made by another transaction since the lookup
            room_id = s.execute(by_name).scalar_one()
        return room_id

    def create_room(self, name: str) -> None:
        with self.writing() as s, s.begin():
            if self._new_room(s, name, utcnow()) is None:
                raise NameTakenError(f"a room named {name!r} already exists")

    def room_id(self, name: str) -> int | None:
        with self.reading() as s:
            return s.scalar(select(Room.id).where(Room.name == name))

    def list_rooms(
        self, account_id: int | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[RoomSummary]:
        """Rooms by name (after ``after``, at most ``limit``), each with its member count
        and whether ``account_id`` is in it."""
        with self.reading() as s:
            counts = (
                select(Membership.room_id, func.count().label("n"))
                .group_by(Membership.room_id)
                .subquery()
            )
            mine = set()
            if account_id is not None:
                mine = set(
                    s.scalars(select(Membership.room_id).where(Membership.account_id == account_id))
                )
            query = (
                select(Room.id, Room.name, func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.room_id == Room.id)
                .order_by(Room.name)
                .limit(limit)
            )
            if after is not None:
                query = query.where(Room.name > after)
            rows = s.execute(query)
            return [RoomSummary(name, int(n), rid in mine) for rid, name, n in rows]

    def join_room(
        self, account_id: int, name: str, *, create: bool, caps: RoomCaps | None = None
    ) -> tuple[int, bool]:
        """Make the account a member; returns (room id, whether it was newly joined).

        A room it makes (``create``) is its own, counted against ``caps``:
        ``RoomLimitError`` past them.
        """
        now = utcnow()
        with self.writing() as s, s.begin():
            room_id = self._room_id(s, name, create=create, now=now, creator=account_id, caps=caps)
            joined = s.scalar(
                self._insert(Membership)
                .values(account_id=account_id, room_id=room_id, joined_at=now)
                .on_conflict_do_nothing(index_elements=[Membership.account_id, Membership.room_id])
                .returning(Membership.room_id)
            )
            return room_id, joined is not None

    def leave_room(self, account_id: int, room_id: int) -> bool:
        with self.writing() as s, s.begin():
            result = s.execute(
                delete(Membership).where(
                    Membership.account_id == account_id, Membership.room_id == room_id
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def room_members(self, room_id: int) -> list[tuple[int, str]]:
        """(account id, name) of every member, by name."""
        with self.reading() as s:
            rows = s.execute(
                select(Account.id, Account.name)
                .join(Membership, Membership.account_id == Account.id)
                .where(Membership.room_id == room_id)
                .order_by(Account.name_key)
            )
            return [(aid, name) for aid, name in rows]

    def login_snapshot(self, account_id: int, history: int, peers: int) -> LoginSnapshot:
        """The account's rooms, their latest ``history`` messages and members, and its
        ``peers`` most recent direct conversations (``history`` messages each).

        One connection and prepared statements only: after bcrypt this is most of a
        login's work, and building a fresh ORM query per room cost more than running it.
        Each page is an index range: ``(room_id, id)`` or ``(pair_low, pair_high, id)``.
        """
        with self.engine.connect() as conn:
            rooms = [
                (rid, name) for rid, name in conn.execute(_ROOMS_OF, {"account_id": account_id})
            ]
            room_ids = [rid for rid, _ in rooms]
            empty = Page([], False)
            room_pages = {
                rid: _latest(conn, _LATEST_IN_ROOM, {"room_id": rid}, history) if history else empty
                for rid in room_ids
            }
            recent: list[tuple[str, Page]] = []
            if peers:
                found = conn.execute(_RECENT_PEERS, {"account_id": account_id, "limit": peers})
                for peer_id, name in found.all():
                    low, high = _pair(account_id, peer_id)
                    page = (
                        _latest(conn, _LATEST_DIRECT, {"low": low, "high": high}, history)
                        if history
                        else empty
                    )
                    recent.append((name, page))
            members: dict[int, list[tuple[int, str]]] = {rid: [] for rid in room_ids}
            if room_ids:
                for rid, member_id, name in conn.execute(_MEMBERS_OF_ROOMS, {"room_ids": room_ids}):
                    members[rid].append((member_id, name))
        return LoginSnapshot(rooms, room_pages, recent, members)

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
        if self._is_sqlite and not peers and self.one_statement_batch(len(rows)) == len(rows):
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
        else:
            columns = dict(zip(_INSERT_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
            with self._writer.begin() as conn:
                self._lock_conversations(conn, batch)
                ids = sorted(conn.execute(_INSERT_UNNESTED, columns).scalars())
                self._update_peers(conn, peers, ids)
        return [
            StoredMessage(i, ts, m.sender_name, m.text, m.room_name, m.recipient_name)
            for i, m in zip(ids, batch, strict=True)
        ]

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
        query = select(*MESSAGE_COLUMNS).outerjoin(Room, Room.id == Message.room_id)
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
        are plain tuples in ``StoredMessage`` field order: exports read millions, and
        building an object per row would cost more than reading it.
        """
        query = select(*MESSAGE_COLUMNS).outerjoin(Room, Room.id == Message.room_id)
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
    "Bound",
    "MessageRow",
    "NameTakenError",
    "NewMessage",
    "NoSuchAccountError",
    "NoSuchRoomError",
    "Page",
    "RoomSummary",
    "Store",
    "StoreError",
    "StoredMessage",
]
