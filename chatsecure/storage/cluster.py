"""What cluster nodes ask the shared database: heartbeats, presence, undelivered messages.

The database is the cluster's truth; the bus between nodes only hints at it. A node reads
here what it has not delivered yet, in id order: ids in one conversation commit in id
order (``Store.insert_messages`` locks the conversation first), so once a node sees an id
of a room, or of an account's direct messages, every lower one is visible too, and a read
of "everything after my cursor" has no gap. Times are the database's clock, so the nodes'
clocks need not agree. PostgreSQL only: a cluster needs a database server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Interval,
    and_,
    bindparam,
    delete,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert

from chatsecure.storage.models import (
    Account,
    ClusterNode,
    ClusterPresence,
    Membership,
    Message,
    Room,
)
from chatsecure.storage.store import MESSAGE_COLUMNS, MESSAGE_FROM, StoredMessage, message_from_row

# How many conversations one catch-up query covers, and how many rows it returns at most.
CONVERSATIONS_PER_QUERY = 100
ROWS_PER_QUERY = 2000


class ClusterStore:
    """The cluster's queries over the store's engine; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("a cluster runs on PostgreSQL only")
        self.engine = engine

    # -- nodes and presence ---------------------------------------------------------

    def start_node(self, node: str) -> float | None:
        """Register ``node`` as alive, forgetting the presence a previous run of it left;
        how many seconds ago a node of that name last beat (None: never, or stopped)."""
        with self.engine.begin() as conn:
            age = conn.scalar(
                select(func.extract("epoch", func.now() - ClusterNode.heartbeat_at)).where(
                    ClusterNode.name == node
                )
            )
            self._beat(conn, node)
            conn.execute(delete(ClusterPresence).where(ClusterPresence.node == node))
        return None if age is None else float(age)

    def beat(self, node: str) -> None:
        with self.engine.begin() as conn:
            self._beat(conn, node)

    @staticmethod
    def _beat(conn: Connection, node: str) -> None:
        upsert = insert(ClusterNode).values(name=node, heartbeat_at=func.now())
        upsert = upsert.on_conflict_do_update(
            index_elements=[ClusterNode.name], set_={"heartbeat_at": func.now()}
        )
        conn.execute(upsert)

    def stop_node(self, node: str) -> None:
        """``node`` leaves the cluster; its presence goes with it (ON DELETE CASCADE)."""
        with self.engine.begin() as conn:
            conn.execute(delete(ClusterNode).where(ClusterNode.name == node))

    def live_nodes(self, timeout: float) -> set[str]:
        """The nodes whose heartbeat is younger than ``timeout`` seconds."""
        with self.engine.connect() as conn:
            return set(conn.scalars(select(ClusterNode.name).where(_alive(timeout))))

    def set_presence(self, node: str, changes: Mapping[int, bool]) -> None:
        """Account -> whether it has a session on ``node`` now; one transaction.

        Accounts deleted meanwhile are skipped, not an error (their rows would go with
        them anyway).
        """
        online = [a for a, present in changes.items() if present]
        offline = [a for a, present in changes.items() if not present]
        with self.engine.begin() as conn:
            if offline:
                conn.execute(
                    delete(ClusterPresence).where(
                        ClusterPresence.node == node, ClusterPresence.account_id.in_(offline)
                    )
                )
            if online:
                existing = select(literal(node), Account.id).where(Account.id.in_(online))
                conn.execute(
                    insert(ClusterPresence)
                    .from_select(["node", "account_id"], existing)
                    .on_conflict_do_nothing()
                )

    def presence(
        self, timeout: float, accounts: Iterable[int] | None = None
    ) -> dict[int, set[str]]:
        """Account -> the live nodes it has a session on (of ``accounts``, or all)."""
        query = (
            select(ClusterPresence.account_id, ClusterPresence.node)
            .join(ClusterNode, ClusterNode.name == ClusterPresence.node)
            .where(_alive(timeout))
        )
        if accounts is not None:
            query = query.where(ClusterPresence.account_id.in_(list(accounts)))
        found: dict[int, set[str]] = {}
        with self.engine.connect() as conn:
            for account_id, node in conn.execute(query):
                found.setdefault(account_id, set()).add(node)
        return found

    def accounts(self, account_ids: Iterable[int]) -> dict[int, tuple[str, set[str]]]:
        """Account -> (its name, the names of its rooms)."""
        ids = list(account_ids)
        if not ids:
            return {}
        with self.engine.connect() as conn:
            found = {
                aid: (name, set[str]())
                for aid, name in conn.execute(
                    select(Account.id, Account.name).where(Account.id.in_(ids))
                )
            }
            for aid, room in conn.execute(
                select(Membership.account_id, Room.name)
                .join(Room, Room.id == Membership.room_id)
                .where(Membership.account_id.in_(ids))
            ):
                found[aid][1].add(room)
        return found

    # -- messages -------------------------------------------------------------------

    def newest_in_rooms(self, room_ids: Iterable[int]) -> dict[int, int]:
        """Room id -> its newest message id (0 for a room without messages)."""
        ids = list(room_ids)
        newest = dict.fromkeys(ids, 0)
        if ids:
            with self.engine.connect() as conn:
                for room_id, message_id in conn.execute(
                    select(Message.room_id, func.max(Message.id))
                    .where(Message.room_id.in_(ids))
                    .group_by(Message.room_id)
                ):
                    newest[room_id or 0] = message_id or 0
        return newest

    def newest_direct(self, account_id: int) -> int:
        """The id of the account's newest direct message, either way (0 if none)."""
        with self.engine.connect() as conn:
            return max(
                conn.scalar(select(func.max(Message.id)).where(side == account_id)) or 0
                for side in (Message.pair_low, Message.pair_high)
            )

    def room_messages_after(
        self, cursors: Mapping[int, int]
    ) -> tuple[list[tuple[int, StoredMessage]], bool]:
        """(room id, message) after each room's cursor (by room id), in id order, and
        whether there is more than this page.

        A page is a prefix of each room's undelivered messages, so a caller that moves
        each cursor to the last id it got misses nothing when it asks again.
        """
        rows, more = self._after(
            cursors,
            (Message.room_id,),
            lambda room, cursor: and_(Message.room_id == room, Message.id > cursor),
        )
        return [(row[0], message_from_row(row[1:])) for row in rows], more

    def direct_messages_after(
        self, cursors: Mapping[int, int]
    ) -> tuple[list[tuple[int, int, StoredMessage]], bool]:
        """(pair_low, pair_high, message) after each account's cursor over its direct
        messages (either side of the pair), in id order; a page, as above."""
        rows, more = self._after(
            cursors,
            (Message.pair_low, Message.pair_high),
            lambda account, cursor: and_(
                or_(Message.pair_low == account, Message.pair_high == account),
                Message.id > cursor,
            ),
        )
        return [(row[0], row[1], message_from_row(row[2:])) for row in rows], more

    def _after(
        self,
        cursors: Mapping[int, int],
        keys: tuple[Any, ...],
        after: Callable[[int, int], ColumnElement[bool]],
    ) -> tuple[list[tuple[Any, ...]], bool]:
        """``keys`` and the message columns of what comes ``after`` each cursor, by id."""
        items = sorted(cursors.items())
        rows: list[tuple[Any, ...]] = []
        more = False
        with self.engine.connect() as conn:
            for start in range(0, len(items), CONVERSATIONS_PER_QUERY):
                chunk = items[start : start + CONVERSATIONS_PER_QUERY]
                query = (
                    select(*keys, *MESSAGE_COLUMNS)
                    .select_from(MESSAGE_FROM)
                    .where(or_(*(after(key, cursor) for key, cursor in chunk)))
                    .order_by(Message.id)
                    .limit(ROWS_PER_QUERY)
                )
                found = [tuple(row) for row in conn.execute(query)]
                more = more or len(found) == ROWS_PER_QUERY
                rows += found
        rows.sort(key=lambda row: int(row[len(keys)]))
        return rows, more


def _alive(timeout: float) -> ColumnElement[bool]:
    age = bindparam("age", timedelta(seconds=timeout), type_=Interval())
    return ClusterNode.heartbeat_at > func.now() - age
