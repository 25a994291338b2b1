"""The cluster hub: the local ``Hub`` for this node's sessions, plus the other nodes' news.

The bus carries hints, the database carries truth. When this node's message writer has
committed a message, the hub does not deliver it at once: it notes "room r (or account
a's direct messages) has news up to id s", publishes that to the bus, and its own thread
reads from the database everything past its cursor for r, in id order, and delivers it.
A hint from another node takes the same way, and so does the heartbeat's catch-up,
which reads every followed conversation: a lost, repeated or late hint, a bus restart or
a node cut off for a while causes no gap and no duplicate, because delivery moves each
cursor forward only, over ids that commit in order in each conversation.

The delivering thread holds the sequencer, like the local message writer: a login or
join reads its history and starts receiving under that lock, so deliveries meet that
history exactly. A history read may be ahead of this node's cursor (another node stored
more meanwhile); that session's floor (``cursors.py``) keeps it from getting those
messages twice.

Presence: an account is online while it has a session on any live node. This node
writes its own accounts to the database and publishes each change; other nodes apply
it at once and check it against the database on the heartbeat (``presence.py``).
Membership changes are published so another node's sessions of the same account follow
the room, and its members hear of the change.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chatsecure.config import Settings
from chatsecure.server.cluster.bus import Bus
from chatsecure.server.cluster.buses import make_bus
from chatsecure.server.cluster.cursors import Cursors
from chatsecure.server.cluster.heartbeat import Heartbeat
from chatsecure.server.cluster.news import Membership, News, Presence, decode, encode
from chatsecure.server.cluster.presence import Elsewhere, RemotePresence
from chatsecure.server.core.hub import Hub, audiences_of
from chatsecure.server.core.notices import MemberChange, Notice, PresenceChange
from chatsecure.server.core.session import Session
from chatsecure.storage.cluster import ClusterStore
from chatsecure.storage.store import LoginSnapshot, Page, Store, StoredMessage

log = logging.getLogger(__name__)

MAX_ROUND = 10_000  # work items the hub thread takes at once
MAX_PAGES = 100  # catch-up pages read in one round before other work gets a turn


@dataclass(frozen=True, slots=True)
class _Stored:
    """This node stored a message: in ``room``, or a direct one of ``account``."""

    message_id: int
    room: str | None = None
    account: int | None = None


@dataclass(frozen=True, slots=True)
class _Flush:
    """Set ``done`` once everything queued before this is delivered."""

    done: threading.Event


class _Signal:
    """A request to the hub thread: catch up on everything, or read presence too."""

    def __init__(self, name: str) -> None:
        self.name = name


CATCH_UP = _Signal("catch up")
RECONCILE = _Signal("reconcile")
_Work = _Stored | Presence | Membership | News | _Signal | _Flush | None
FLUSH_TIMEOUT = 5.0


class ClusterHub(Hub):
    def __init__(self, settings: Settings, store: Store, bus: Bus | None = None) -> None:
        super().__init__()
        self._settings = settings.cluster
        self._node = settings.cluster.node
        self._history = settings.history
        self._store = store
        self._db = ClusterStore(store.engine)
        self._bus = bus if bus is not None else make_bus(settings.cluster, store.engine)
        self._rooms_at: Cursors[str] = Cursors()
        self._directs_at: Cursors[int] = Cursors()
        self._room_ids: dict[str, int] = {}
        self._elsewhere = RemotePresence()
        self._work: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="cluster-hub", daemon=True)
        self._heartbeat = Heartbeat(
            settings.cluster,
            self._db,
            catch_up=lambda: self._work.put(CATCH_UP),
            reconcile=lambda: self._work.put(RECONCILE),
        )

    def start(self) -> None:
        """Join the cluster: register the node, start delivering, listen to the bus."""
        age = self._db.start_node(self._node)
        if age is not None and age < self._settings.node_timeout:
            log.warning(
                "a node named %s beat %.1fs ago: if it is not this node restarting after a "
                "crash, two nodes share one node_name, and presence will be wrong",
                self._node,
                age,
            )
        self._thread.start()
        self._heartbeat.start()
        self._bus.start(self)
        log.info("cluster node %s started (%s bus)", self._node, self._settings.bus)

    def stop(self) -> None:
        """After the service ended its sessions: publish the rest, leave, disconnect."""
        self._heartbeat.stop()
        self._work.put(None)
        self._thread.join(timeout=10)
        try:
            self._db.stop_node(self._node)
        except Exception:
            log.exception("could not remove node %s from the cluster's table", self._node)
        for payload in encode(News(self._node, leaving=True)):
            self._bus.publish(payload)
        self._bus.stop()

    def flush(self) -> None:
        done = threading.Event()
        self._work.put(_Flush(done))
        if not done.wait(FLUSH_TIMEOUT):
            log.warning("the cluster hub did not deliver everything within %ss", FLUSH_TIMEOUT)

    # -- the bus's listener -----------------------------------------------------------

    def heard(self, payload: str) -> None:
        news = decode(payload)
        if news is not None and news.node != self._node:
            self._work.put(news)

    def connected(self) -> None:
        self._work.put(RECONCILE)

    # -- the Hub, as the service uses it (under the sequencer) --------------------------

    def log_in(
        self, session: Session, rooms: Iterable[str], seen: LoginSnapshot | None = None
    ) -> bool:
        names = list(rooms)
        first_here = super().log_in(session, names)
        account = session.account_id
        shown: dict[str, Page] = {}
        if seen is not None:
            for room_id, name in seen.rooms:
                self._room_ids[name] = room_id
                shown[name] = seen.room_pages[room_id]
        with_history = self._history.on_login > 0 and seen is not None
        for name in names:
            page = shown.get(name)
            newest = _newest(page) if with_history and page is not None else None
            self._follow_room(name, session, newest)
        newest_direct = self._newest_direct_shown(seen)
        if account in self._directs_at:
            if newest_direct is not None:
                self._directs_at.showed(account, session, newest_direct)
        else:
            self._directs_at.start(
                account,
                newest_direct if newest_direct is not None else self._db.newest_direct(account),
            )
        if first_here:
            self._work.put(Presence(account, True))
        return first_here and account not in self._elsewhere

    def _newest_direct_shown(self, seen: LoginSnapshot | None) -> int | None:
        """The newest direct message id the login showed, if it showed the newest one."""
        if seen is None or not self._history.on_login or not self._history.dm_peers_on_login:
            return None
        if not seen.peers:
            return 0  # the account has no direct messages at all
        messages = seen.peers[0][1].messages  # the most recently active peer's page
        return messages[-1].id if messages else None

    def _follow_room(self, name: str, session: Session | None, newest: int | None) -> None:
        """Deliver room ``name`` here from now on; ``session`` was shown up to ``newest``."""
        if name in self._rooms_at:
            if session is not None and newest is not None:
                self._rooms_at.showed(name, session, newest)
            return
        if newest is None:
            room_id = self._room_id(name)
            newest = self._db.newest_in_rooms([room_id])[room_id] if room_id else 0
        self._rooms_at.start(name, newest)

    def _room_id(self, name: str) -> int | None:
        room_id = self._room_ids.get(name)
        if room_id is None:
            room_id = self._store.room_id(name)
            if room_id is not None:
                self._room_ids[name] = room_id
        return room_id

    def join(self, account: int, room: str) -> None:
        super().join(account, room)
        if self.sessions_of(account):
            # The history the joiner is sent is read after this: it cannot be older.
            self._follow_room(room, None, None)

    def showed(self, session: Session, room: str, page: Page) -> None:
        if page.messages:
            self._rooms_at.showed(room, session, page.messages[-1].id)

    def leave(self, account: int, room: str) -> None:
        super().leave(account, room)
        self._unfollow([room])

    def _unfollow(self, rooms: Iterable[str]) -> None:
        with self._lock:
            gone = [room for room in rooms if room not in self._rooms]
        for room in gone:
            self._rooms_at.drop(room)

    def close(self, session: Session) -> bool:
        account = session.account.id if session.account is not None else None
        with self._lock:
            rooms = set(self._rooms_of.get(account, ())) if account is not None else set()
        last_here = super().close(session)
        self._rooms_at.forget(session)
        self._directs_at.forget(session)
        if not last_here or account is None:
            return False
        self._directs_at.drop(account)
        self._unfollow(rooms)
        self._work.put(Presence(account, False))
        return account not in self._elsewhere

    def is_online(self, account: int) -> bool:
        return super().is_online(account) or account in self._elsewhere

    def to_room(self, name: str, notice: Notice, *, skip: Session | None = None) -> None:
        if isinstance(notice, StoredMessage):
            self._work.put(_Stored(notice.id, room=name))
            return
        super().to_room(name, notice, skip=skip)
        if isinstance(notice, MemberChange) and skip is not None and skip.account is not None:
            self._work.put(Membership(skip.account.id, notice.user, notice.room, notice.joined))

    def to_accounts(self, accounts: Iterable[int], notice: Notice) -> None:
        if isinstance(notice, StoredMessage):
            for account in set(accounts):
                self._work.put(_Stored(notice.id, account=account))
            return
        super().to_accounts(accounts, notice)

    # -- the hub thread ---------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = [self._work.get()]
            while len(items) < MAX_ROUND:
                try:
                    items.append(self._work.get_nowait())
                except queue.Empty:
                    break
            stopping = None in items
            try:
                self._round([item for item in items if item is not None])
            except Exception:
                # The database or the bus is away. The heartbeat asks for a catch-up and a
                # reconcile when it can beat again, which covers whatever this round lost.
                log.exception("cluster hub round failed; the heartbeat will catch up")
                time.sleep(self._settings.heartbeat_interval)

    def _round(self, items: list[_Work]) -> None:
        out = News(self._node)
        wanted = News(self._node)  # what to read: this node's news and the others'
        heard: list[News] = []
        present: dict[int, bool] = {}
        flushed: list[threading.Event] = []
        everything = reconcile = False
        for item in items:
            if isinstance(item, _Stored):
                if item.room is not None:
                    out.hint_room(item.room, item.message_id)
                    wanted.hint_room(item.room, item.message_id)
                elif item.account is not None:
                    out.hint_direct(item.account, item.message_id)
                    wanted.hint_direct(item.account, item.message_id)
            elif isinstance(item, Presence):
                out.events.append(item)
                present[item.account] = item.online
            elif isinstance(item, Membership):
                out.events.append(item)
            elif isinstance(item, News):
                heard.append(item)
                for room, upto in item.rooms.items():
                    wanted.hint_room(room, upto)
                for account, upto in item.directs.items():
                    wanted.hint_direct(account, upto)
                reconcile = reconcile or item.leaving
            elif item is CATCH_UP:
                everything = True
            elif item is RECONCILE:
                everything = reconcile = True
            elif isinstance(item, _Flush):
                flushed.append(item.done)
        if present:
            self._db.set_presence(self._node, present)  # before the news of it
        for payload in encode(out):
            self._bus.publish(payload)
        if heard:
            self._apply(heard)
        if reconcile:
            self._reconcile()
        self._catch_up(None if everything else wanted)
        for done in flushed:
            done.set()

    # -- news from other nodes --------------------------------------------------------

    def _apply(self, heard: list[News]) -> None:
        arriving = {
            event.account
            for news in heard
            for event in news.events
            if isinstance(event, Presence) and event.online and event.account not in self._elsewhere
        }
        found = self._db.accounts(arriving)
        with self.sequencer:
            for news in heard:
                for event in news.events:
                    if isinstance(event, Membership):
                        self._apply_membership(event)
                    elif event.online:
                        if event.account in found:
                            name, rooms = found[event.account]
                            self._arrive(event.account, news.node, name, rooms)
                    else:
                        self._depart(event.account, news.node)

    def _apply_membership(self, event: Membership) -> None:
        self._elsewhere.joined(event.account, event.room, event.joined)
        notice = MemberChange(event.room, event.user, event.joined)
        if not event.joined:
            super().to_room(event.room, notice)
        if self.sessions_of(event.account):
            self._follow_memberships([event.account])
        if event.joined:
            super().to_room(event.room, notice)

    def _follow_memberships(self, accounts: Iterable[int]) -> None:
        """Under the sequencer: this node's sessions of ``accounts`` follow the rooms the
        database says the accounts are in.

        The news of a join or leave is only a hint: it may be late (after a leave here
        that came later) or lost. The core stores a membership before it changes the
        hub under the sequencer, so a read under the sequencer is never behind the hub.
        """
        for account, (_name, rooms) in self._db.accounts(accounts).items():
            with self._lock:
                followed = set(self._rooms_of.get(account, ()))
            for room in rooms - followed:
                self.join(account, room)
            for room in followed - rooms:
                self.leave(account, room)

    def _arrive(self, account: int, node: str, name: str, rooms: Iterable[str]) -> None:
        here = super().is_online(account)
        if self._elsewhere.arrive(account, node, name, rooms) and not here:
            self._announce(account, self._elsewhere.get(account), online=True)

    def _depart(self, account: int, node: str) -> None:
        left = self._elsewhere.depart(account, node)
        if left is not None and not super().is_online(account):
            self._announce(account, left, online=False)

    def _announce(self, account: int, who: Elsewhere | None, *, online: bool) -> None:
        """Tell this node's sessions sharing a room with ``who`` that it came or went."""
        if who is None:
            return
        with self._lock:
            mates = {
                a for room in who.rooms if room in self._rooms for a in self._rooms[room].online
            }
        mates.discard(account)
        super().to_accounts(mates, PresenceChange(who.name, online))

    def _reconcile(self) -> None:
        """Read who is online where, and the rooms of this node's accounts; correct this
        node's rows, its view of the others, and what its sessions follow."""
        timeout = self._settings.node_timeout
        truth = self._db.presence(timeout)
        mine = {a for a, nodes in truth.items() if self._node in nodes}
        here = set(self.online_accounts())
        wrong = dict.fromkeys(mine - here, False) | dict.fromkeys(here - mine, True)
        if wrong:
            self._db.set_presence(self._node, wrong)
        elsewhere = {a: nodes - {self._node} for a, nodes in truth.items() if nodes - {self._node}}
        found = self._db.accounts(a for a in elsewhere if a not in self._elsewhere)
        with self.sequencer:
            self._follow_memberships(here)
            known = self._elsewhere.accounts()
            for account, nodes in known.items():
                for node in nodes - elsewhere.get(account, set()):
                    self._depart(account, node)
            for account, nodes in elsewhere.items():
                info = self._elsewhere.get(account)
                name, rooms = (info.name, info.rooms) if info else found.get(account, ("", set()))
                if not name:
                    continue  # deleted meanwhile
                for node in nodes - known.get(account, set()):
                    self._arrive(account, node, name, rooms)

    # -- catching up from the database ------------------------------------------------

    def _catch_up(self, wanted: News | None) -> None:
        """Read and deliver what this node has not delivered: of ``wanted``'s hints only
        (those past the cursors), or of every followed conversation (None)."""
        for _ in range(MAX_PAGES):
            with self.sequencer:
                rooms = self._rooms_at.snapshot()
                directs = self._directs_at.snapshot()
            if wanted is not None:
                rooms = {r: at for r, at in rooms.items() if wanted.rooms.get(r, 0) > at}
                directs = {a: at for a, at in directs.items() if wanted.directs.get(a, 0) > at}
            if not rooms and not directs:
                return
            by_id = self._room_cursors(rooms)
            room_rows, more_rooms = self._db.room_messages_after(by_id)
            direct_rows, more_directs = self._db.direct_messages_after(directs)
            with self.sequencer:
                self._deliver(room_rows, direct_rows)
            if not (more_rooms or more_directs):
                return

    def _room_cursors(self, rooms: Mapping[str, int]) -> dict[int, int]:
        by_id: dict[int, int] = {}
        for name, at in rooms.items():
            room_id = self._room_id(name)
            if room_id is not None:
                by_id[room_id] = at
        return by_id

    def _deliver(
        self,
        room_rows: list[tuple[int, StoredMessage]],
        direct_rows: list[tuple[int, int, StoredMessage]],
    ) -> None:
        """Under the sequencer, in id order: each message once, past each cursor."""
        for _room_id, message in room_rows:
            room = message.room
            if room is None:
                continue
            saw = self._rooms_at.advance(room, message.id)
            if saw is None:
                continue
            if not saw:
                super().to_room(room, message)
                continue
            with self._lock:
                online = self._rooms[room].online if room in self._rooms else set()
                outboxes = [s.outbox for a in online for s in self._by_account[a] if s not in saw]
            for audience in audiences_of(outboxes):
                audience.tell(message)
        for low, high, message in direct_rows:
            for account in {low, high}:
                saw = self._directs_at.advance(account, message.id)
                if saw is None:
                    continue
                outboxes = [s.outbox for s in self.sessions_of(account) if s not in saw]
                for audience in audiences_of(outboxes):
                    audience.tell(message)


def _newest(page: Page) -> int:
    """The newest id of a history page; 0 for an empty one (nothing stored yet)."""
    return page.messages[-1].id if page.messages else 0
