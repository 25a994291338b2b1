"""The chat core: accounts, rooms, presence, history and limits, with no sockets.

Requests are dispatched through a table keyed by event type. Three kinds of thread
come in here: connection reader threads (``Session.receive``), the message writer,
and the housekeeping timer. The ``sequencer`` lock orders what sessions see: the
writer holds it while it commits and delivers a batch, and a login, join or leave
holds it while it reads history and changes who receives what, so no session ever gets
a live message older than history it was just sent, or misses one in between.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from chatsecure.config import Settings
from chatsecure.protocol import (
    ByeReason,
    ClientPing,
    ClientPong,
    Error,
    ErrorCode,
    History,
    HistoryReply,
    Join,
    Joined,
    Leave,
    ListRooms,
    Login,
    Logout,
    Member,
    MemberInfo,
    Message,
    Ok,
    Passwd,
    Presence,
    Req,
    Request,
    RoomInfo,
    RoomsReply,
    Send,
    ServerPing,
    ServerPong,
    Welcome,
    Who,
    WhoReply,
    encode,
)
from chatsecure.protocol.events import PresenceStatus
from chatsecure.server.core import events
from chatsecure.server.core.auth import Authenticator, LoginAccepted, PasswordChangeError
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.limits import TokenBucket
from chatsecure.server.core.outbox import Outbox
from chatsecure.server.core.session import Session
from chatsecure.server.core.writer import MessageWriter, Submission
from chatsecure.storage.store import NewMessage, NoSuchRoomError, Page, Store, StoredMessage
from chatsecure.timestamps import format_ts

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 1.0
BLOCKED_POLL_INTERVAL = 2.0  # disabled accounts are kicked within this (plus a tick)


class RequestError(Exception):
    """A request the core refuses with an ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def _message_frame(m: StoredMessage, ts: str | None = None) -> Message:
    """The frame for ``m``; pass ``ts`` when it is already formatted."""
    return Message(
        id=m.id, ts=ts or format_ts(m.ts_ms), from_=m.sender, text=m.text, room=m.room, to=m.to
    )


class ChatCore:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.hub = Hub()
        self.sequencer = threading.Lock()
        self.auth = Authenticator(store, settings.auth, clock)
        self.writer = MessageWriter(store, self.sequencer, self._deliver, self._refuse_unstored)
        self._sessions: set[Session] = set()
        self._sessions_lock = threading.Lock()
        self._buckets: dict[int, TokenBucket] = {}
        self._room_ids: dict[str, int] = {}
        self._stopping = threading.Event()
        self._observers: list[events.Observer] = []
        self._session_ids = itertools.count(1)
        self._housekeeper = threading.Thread(
            target=self._housekeeping, name="housekeeping", daemon=True
        )
        self._handlers: dict[type[Any], Callable[[Session, Any], None]] = {
            Login: self._login,
            Send: self._send,
            Join: self._join,
            Leave: self._leave,
            ListRooms: self._rooms,
            Who: self._who,
            History: self._history,
            Passwd: self._passwd,
            ClientPing: self._ping,
            ClientPong: lambda _session, _event: None,  # being heard from is all it means
            Logout: lambda session, _event: session.end(ByeReason.LOGOUT),
        }

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self.writer.start()
        self._housekeeper.start()

    def shutdown(self) -> None:
        """Store and deliver what is queued, then say ``bye`` ``shutdown`` to everyone."""
        self._stopping.set()
        self.writer.stop()
        for session in self._all_sessions():
            session.end(ByeReason.SHUTDOWN)
        self._housekeeper.join(timeout=5)
        self.auth.close()

    def open_session(self, outbox: Outbox, address: str) -> Session:
        session = Session(self, next(self._session_ids), outbox, address, self.clock())
        with self._sessions_lock:
            self._sessions.add(session)
        outbox.send(session.connection.hello())
        self._emit(events.Connected(session.id, address, time.time()))
        return session

    # -- observers and admin actions --------------------------------------------------

    def subscribe(self, observer: events.Observer) -> None:
        """Call ``observer`` with every ``events.ServerEvent`` from now on (any thread)."""
        self._observers = [*self._observers, observer]

    def unsubscribe(self, observer: events.Observer) -> None:
        self._observers = [o for o in self._observers if o is not observer]

    def _emit(self, event: events.ServerEvent) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                log.exception("observer %r failed on %r", observer, event)

    def disconnect(self, session_id: int) -> bool:
        """End one session as an admin asked; False if it is already gone."""
        for session in self._all_sessions():
            if session.id == session_id:
                log.info("%s (%s) disconnected by an admin", session.user, session.address)
                session.end(ByeReason.KICKED)
                return True
        return False

    def disable_account(self, name: str) -> None:
        """Disable the account (as ``chatsecure-admin disable`` does) and end its sessions now."""
        self.store.set_disabled(name, True)
        self._kick_blocked()

    def session_ended(self, session: Session, reason: ByeReason | None) -> None:
        with self._sessions_lock:
            self._sessions.discard(session)
        if session.account is None:
            self._emit(events.Disconnected(session.id, None, session.address, reason or "closed"))
            return
        with self.sequencer:
            mates = self.hub.room_mates(session.account_id)
            if self.hub.remove(session):
                self._announce_presence(mates, session.user, "offline")
        self._emit(
            events.Disconnected(session.id, session.user, session.address, reason or "closed")
        )
        log.info("%s disconnected from %s (%s)", session.user, session.address, reason or "closed")

    def _all_sessions(self) -> list[Session]:
        with self._sessions_lock:
            return list(self._sessions)

    # -- dispatch ---------------------------------------------------------------------

    def handle(self, session: Session, request: Request) -> None:
        try:
            self._handlers[type(request)](session, request)
        except RequestError as refusal:
            session.reply(
                Error(
                    code=refusal.code,
                    message=refusal.message,
                    req=request.req,
                    retry_after=refusal.retry_after,
                )
            )

    # -- login ------------------------------------------------------------------------

    def _login(self, session: Session, request: Login) -> None:
        result = self.auth.login(request.username, request.password, session.address)
        if not isinstance(result, LoginAccepted):
            throttled = result.retry_after is not None
            self._emit(events.LoginRefused(session.address, request.username, throttled))
            if throttled:
                log.info("login throttled from %s", session.address)
                raise RequestError(
                    ErrorCode.RATE_LIMITED,
                    "too many failed logins; try again later",
                    retry_after=result.retry_after,
                )
            log.info("failed login from %s", session.address)
            raise RequestError(ErrorCode.AUTH_FAILED, "invalid username or password")
        account = result.account
        session.account = account
        session.connection.login_succeeded()
        log.info("%s logged in from %s", account.name, session.address)
        with self.sequencer:
            rooms = self.store.rooms_of(account.id)
            for room_id, name in rooms:
                self._room_ids[name] = room_id
            first = self.hub.add(session, [name for _, name in rooms])
            session.reply(
                Welcome(req=request.req, user=account.name, rooms=tuple(n for _, n in rooms))
            )
            limit = self.settings.history.on_login
            room_ids = [room_id for room_id, _ in rooms]
            pages = self.store.latest_in_rooms(room_ids, limit) if limit else {}
            for room_id, name in rooms:
                session.reply(self._history_reply(pages.get(room_id, Page([], False)), room=name))
            for peer_id, peer in self.store.recent_peers(
                account.id, self.settings.history.dm_peers_on_login
            ):
                page = self._recent(partial(self.store.direct_history, account.id, peer_id))
                session.reply(self._history_reply(page, with_=peer))
            members = self.store.members_of_rooms(room_ids)
            for room_id, name in rooms:
                session.reply(self._who_frame(members[room_id], name))
            if first:
                self._announce_presence(self.hub.room_mates(account.id), account.name, "online")
        self._emit(
            events.LoggedIn(session.id, account.name, session.address, tuple(n for _, n in rooms))
        )

    def _announce_presence(self, mates: set[int], user: str, status: PresenceStatus) -> None:
        """Tell every account sharing a room with ``user`` that it came or went."""
        self.hub.to_accounts(mates, encode(Presence(user=user, status=status)))

    # -- messages ---------------------------------------------------------------------

    def _send(self, session: Session, request: Send) -> None:
        wait = self._bucket(session.account_id).take(self.clock())
        if wait:
            raise RequestError(
                ErrorCode.RATE_LIMITED, "sending too fast", retry_after=math.ceil(wait)
            )
        account = session.account
        assert account is not None
        if request.room is not None:
            room_id = self._member_room_id(session, request.room)
            message = NewMessage(
                account.id, account.name, request.text, room_id=room_id, room_name=request.room
            )
            self.writer.submit(Submission(message, session, request.req))
            return
        assert request.to is not None
        peer = self.store.get_account(request.to)
        if peer is None:
            raise RequestError(ErrorCode.NO_SUCH_USER, f"no user named {request.to!r}")
        message = NewMessage(
            account.id, account.name, request.text, recipient_id=peer.id, recipient_name=peer.name
        )
        self.writer.submit(Submission(message, session, request.req, recipient_id=peer.id))

    def _bucket(self, account_id: int) -> TokenBucket:
        bucket = self._buckets.get(account_id)
        if bucket is None:
            limits = self.settings.limits
            bucket = self._buckets.setdefault(
                account_id,
                TokenBucket(limits.messages_per_second, limits.message_burst, self.clock()),
            )
        return bucket

    def _deliver(self, stored: Sequence[tuple[Submission, StoredMessage]]) -> None:
        """Runs in the writer thread, under the sequencer, in id order."""
        for submission, message in stored:
            session: Session = submission.sender
            ts = format_ts(message.ts_ms)
            session.reply(Ok(req=submission.req, id=message.id, ts=ts))
            data = encode(_message_frame(message, ts))
            if self._observers:
                self._emit(
                    events.MessageStored(
                        message.id, message.sender, message.room, message.to, message.text
                    )
                )
            if message.room is not None:
                self.hub.to_room(message.room, data)
            else:
                assert submission.recipient_id is not None
                self.hub.to_accounts((session.account_id, submission.recipient_id), data)

    def _refuse_unstored(self, submissions: Sequence[Submission]) -> None:
        self._emit(events.Fault(f"could not store {len(submissions)} message(s)"))
        for submission in submissions:
            session: Session = submission.sender
            session.reply(
                Error(
                    code=ErrorCode.SERVER_ERROR,
                    message="the message could not be stored; it was not sent",
                    req=submission.req,
                )
            )

    # -- rooms ------------------------------------------------------------------------

    def _member_room_id(self, session: Session, room: str) -> int:
        """The room's id if the session's account is in it; else ``not_member``."""
        if not self.hub.in_room(session.account_id, room):
            if self._room_id(room) is None:
                raise RequestError(ErrorCode.NO_SUCH_ROOM, f"no room named {room!r}")
            raise RequestError(ErrorCode.NOT_MEMBER, f"you are not in {room!r}")
        room_id = self._room_id(room)
        assert room_id is not None
        return room_id

    def _room_id(self, room: str) -> int | None:
        room_id = self._room_ids.get(room)
        if room_id is None:
            room_id = self.store.room_id(room)
            if room_id is not None:
                self._room_ids[room] = room_id
        return room_id

    def _join(self, session: Session, request: Join) -> None:
        try:
            room_id, newly = self.store.join_room(
                session.account_id, request.room, create=self.settings.rooms.users_can_create
            )
        except NoSuchRoomError:
            raise RequestError(ErrorCode.NO_SUCH_ROOM, f"no room named {request.room!r}") from None
        self._room_ids[request.room] = room_id
        with self.sequencer:
            self.hub.join(session.account_id, request.room)
            session.reply(Joined(req=request.req, room=request.room))
            page = self._recent(partial(self.store.room_history, room_id))
            session.reply(self._history_reply(page, room=request.room))
            session.reply(self._who_reply(room_id, request.room))
            if newly:
                log.info("%s joined %s", session.user, request.room)
                self._emit(events.RoomJoined(session.user, request.room))
                event = Member(room=request.room, user=session.user, event="joined")
                self.hub.to_room(request.room, encode(event), skip=session.outbox)

    def _leave(self, session: Session, request: Leave) -> None:
        room_id = self._member_room_id(session, request.room)
        self.store.leave_room(session.account_id, room_id)
        with self.sequencer:
            event = Member(room=request.room, user=session.user, event="left")
            self.hub.to_room(request.room, encode(event), skip=session.outbox)
            self.hub.leave(session.account_id, request.room)
            session.reply(Ok(req=request.req))
        log.info("%s left %s", session.user, request.room)
        self._emit(events.RoomLeft(session.user, request.room))

    def _rooms(self, session: Session, request: ListRooms) -> None:
        rooms = self.store.list_rooms(session.account_id)
        session.reply(
            RoomsReply(
                req=request.req,
                rooms=tuple(
                    RoomInfo(name=r.name, members=r.members, joined=r.joined) for r in rooms
                ),
            )
        )

    def _who(self, session: Session, request: Who) -> None:
        room_id = self._member_room_id(session, request.room)
        session.reply(self._who_reply(room_id, request.room, req=request.req))

    def _who_reply(self, room_id: int, room: str, req: Req | None = None) -> WhoReply:
        return self._who_frame(self.store.room_members(room_id), room, req)

    def _who_frame(
        self, members: list[tuple[int, str]], room: str, req: Req | None = None
    ) -> WhoReply:
        infos = tuple(
            MemberInfo(user=name, online=self.hub.is_online(account_id))
            for account_id, name in members
        )
        return WhoReply(req=req, room=room, members=infos)

    # -- history ----------------------------------------------------------------------

    def _history(self, session: Session, request: History) -> None:
        if request.room is not None:
            room_id = self._member_room_id(session, request.room)
            page = self.store.room_history(
                room_id, before=request.before, after=request.after, limit=request.limit
            )
            session.reply(self._history_reply(page, room=request.room, req=request.req))
            return
        assert request.with_ is not None
        peer = self.store.get_account(request.with_)
        if peer is None:
            raise RequestError(ErrorCode.NO_SUCH_USER, f"no user named {request.with_!r}")
        page = self.store.direct_history(
            session.account_id,
            peer.id,
            before=request.before,
            after=request.after,
            limit=request.limit,
        )
        session.reply(self._history_reply(page, with_=peer.name, req=request.req))

    def _recent(self, fetch: Callable[..., Page]) -> Page:
        """The latest ``history.on_login`` messages; an empty page when that is 0."""
        limit = self.settings.history.on_login
        return fetch(limit=limit) if limit else Page([], False)

    @staticmethod
    def _history_reply(
        page: Page, *, room: str | None = None, with_: str | None = None, req: Req | None = None
    ) -> HistoryReply:
        return HistoryReply(
            req=req,
            room=room,
            with_=with_,
            messages=tuple(_message_frame(m) for m in page.messages),
            more=page.more,
        )

    # -- account ----------------------------------------------------------------------

    def _passwd(self, session: Session, request: Passwd) -> None:
        try:
            self.auth.change_password(session.user, request.old, request.new, session.address)
        except PasswordChangeError as refusal:
            code = ErrorCode.WEAK_PASSWORD if refusal.weak else ErrorCode.AUTH_FAILED
            raise RequestError(code, str(refusal)) from None
        session.reply(Ok(req=request.req))

    def _ping(self, session: Session, request: ClientPing) -> None:
        session.reply(ServerPong(req=request.req))

    # -- housekeeping -----------------------------------------------------------------

    def _housekeeping(self) -> None:
        """Login and idle timeouts, pings, and kicking disabled accounts."""
        next_poll = self.clock()
        while not self._stopping.wait(HOUSEKEEPING_INTERVAL):
            try:
                now = self.clock()
                self._check_timeouts(now)
                if now >= next_poll:
                    next_poll = now + BLOCKED_POLL_INTERVAL
                    self._kick_blocked()
            except Exception:
                log.exception("housekeeping failed; will retry")
                self._emit(events.Fault("housekeeping failed; see the log"))

    def _check_timeouts(self, now: float) -> None:
        limits = self.settings.limits
        for session in self._all_sessions():
            if session.account is None:
                if now - session.opened_at > limits.login_timeout:
                    session.end(ByeReason.LOGIN_TIMEOUT)
                continue
            quiet = now - session.last_heard
            if quiet > limits.idle_timeout:
                session.end(ByeReason.IDLE_TIMEOUT)
            elif quiet > limits.idle_timeout / 2 and not session.pinged:
                session.pinged = True
                session.reply(ServerPing())

    def _kick_blocked(self) -> None:
        """End the sessions of accounts disabled (or deleted) by an admin since login.

        The admin tool is another process, so the server asks the database: one small
        indexed query every couple of seconds, which also works with several nodes.
        """
        for account_id in self.store.blocked_accounts(self.hub.online_accounts()):
            for member in self.hub.sessions_of(account_id):
                session: Session = member  # type: ignore[assignment]
                log.info("%s disabled by an admin: disconnecting", session.user)
                session.end(ByeReason.ACCOUNT_DISABLED)
