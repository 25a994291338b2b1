"""One login, seen from the window's thread: network events in, view updates out.

``ChatSession`` owns the ``NetworkClient`` and the ``ChatState``. The window calls
``poll`` from a Tk ``after()`` timer; it drains a bounded number of network events, folds
them into the state, and returns small ``Update``\\ s saying what to redraw. It also keeps
track of the requests it made, so a reply finds its purpose: a page back, a gap being
filled after a reconnect, an export in progress, a password change.
"""

from __future__ import annotations

import enum
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from chatsecure.client import commands
from chatsecure.client.events import (
    ConnectionLost,
    FrameArrived,
    LoggedIn,
    LoggedOut,
    LoginFailed,
    NetworkEvent,
    SessionEnded,
    TrustNeeded,
)
from chatsecure.client.network import Credentials, NetworkClient, ServerAddress
from chatsecure.client.profile import LastLogin, save_last_login
from chatsecure.client.state import Added, ChatState, Conversation, ConvKey, Kind
from chatsecure.client.state import Member as RoomMember
from chatsecure.client.trust import TrustStore
from chatsecure.client.validation import room_error
from chatsecure.export import ExportRecord, export_to_path
from chatsecure.names import normalize_room
from chatsecure.protocol import (
    Error,
    History,
    HistoryReply,
    Join,
    Joined,
    Leave,
    Member,
    Message,
    Ok,
    Passwd,
    Presence,
    Send,
    ServerFrame,
    WhoReply,
)

OLDER_PAGE = 50
GAP_PAGE = 500
EXPORT_PAGE = 500
POLL_BATCH = 200


@dataclass(frozen=True, slots=True)
class LinesAdded:
    added: Added


@dataclass(frozen=True, slots=True)
class Redraw:
    """Lines changed other than at the end (an older page, a cleared view)."""

    key: ConvKey
    older: int = 0  # how many older lines were put on top


@dataclass(frozen=True, slots=True)
class SidebarChanged:
    pass


@dataclass(frozen=True, slots=True)
class MembersChanged:
    key: ConvKey


@dataclass(frozen=True, slots=True)
class CurrentChanged:
    key: ConvKey | None


@dataclass(frozen=True, slots=True)
class Status:
    """The connection's state for the status bar; ``None`` when all is well."""

    text: str | None


@dataclass(frozen=True, slots=True)
class PasswordResult:
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class ExportProgress:
    count: int


@dataclass(frozen=True, slots=True)
class ExportFinished:
    path: Path
    count: int


@dataclass(frozen=True, slots=True)
class ExportFailed:
    message: str


Update = (
    LinesAdded
    | Redraw
    | SidebarChanged
    | MembersChanged
    | CurrentChanged
    | Status
    | PasswordResult
    | ExportProgress
    | ExportFinished
    | ExportFailed
    | LoginFailed
    | TrustNeeded
    | LoggedIn
    | SessionEnded
    | LoggedOut
)


@dataclass(slots=True)
class _Export:
    key: ConvKey
    path: Path
    fmt: str
    pages: list[tuple[Message, ...]] = field(default_factory=list)
    count: int = 0


class _Purpose(enum.Enum):
    """What a request was for, which decides what its reply does (``_reply_handlers``)."""

    SEND = enum.auto()
    JOIN = enum.auto()
    LEAVE = enum.auto()
    OLDER = enum.auto()  # a page back, for Load older
    GAP = enum.auto()  # a page of what was missed while disconnected
    EXPORT = enum.auto()
    PASSWD = enum.auto()


@dataclass(frozen=True, slots=True)
class _Pending:
    """A request waiting for its reply: what it is for, and which conversation it concerns."""

    purpose: _Purpose
    key: ConvKey | None = None
    backward: bool = False  # a gap filled from the newest message back


_ReplyHandler = Callable[[_Pending, ServerFrame | None], list[Update]]


def now_ts() -> str:
    """The current time in the wire's form, for notices the client makes itself."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ChatSession:
    """Log in, then keep ``state`` in step with the server; all methods on one thread."""

    def __init__(
        self,
        address: ServerAddress,
        credentials: Credentials,
        trust: TrustStore,
        *,
        profile_dir: Path | None = None,
    ) -> None:
        self.address = address
        self.credentials = credentials
        self.trust = trust
        self.profile_dir = profile_dir
        self.events: queue.Queue[NetworkEvent] = queue.Queue()
        self.state: ChatState | None = None
        self.connected = False
        self._network: NetworkClient | None = None
        self._pending: dict[int, _Pending] = {}
        self._export: _Export | None = None
        self._logins = 0
        self._reply_handlers: dict[_Purpose, _ReplyHandler] = {
            _Purpose.SEND: self._send_reply,
            _Purpose.JOIN: self._join_reply,
            _Purpose.LEAVE: self._leave_reply,
            _Purpose.OLDER: self._older_reply,
            _Purpose.GAP: self._gap_reply,
            _Purpose.EXPORT: self._export_reply,
            _Purpose.PASSWD: self._passwd_reply,
        }

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._network = NetworkClient(self.events, self.address, self.credentials, self.trust)
        self._network.start()

    def trust_and_retry(self, fingerprint: str) -> None:
        """The person accepted this certificate: pin it and log in again."""
        self.trust.remember(self.address.host, self.address.port, fingerprint)
        self.start()

    def logout(self) -> None:
        if self._network is not None:
            self._network.logout()

    def close(self) -> None:
        if self._network is not None:
            self._network.close()

    @property
    def network(self) -> NetworkClient:
        if self._network is None:
            raise RuntimeError("the session has not been started")
        return self._network

    def _request(self, request: Send | Join | Leave | History | Passwd, pending: _Pending) -> int:
        req = self.network.request(request)
        self._pending[req] = pending
        return req

    # -- events in, updates out -------------------------------------------------------

    def poll(self, limit: int = POLL_BATCH) -> Iterator[Update]:
        """Handle at most ``limit`` waiting network events; what the window should redraw.

        A generator on purpose: each event's updates are applied before the next event
        changes the state. (Handling a batch first made a join's redraw already show the
        room's history, and then the history's "lines added" drew it a second time.)
        """
        for _ in range(limit):
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            yield from self._handle_event(event)

    def _handle_event(self, event: NetworkEvent) -> list[Update]:
        if isinstance(event, FrameArrived):
            return self._handle_frame(event.frame)
        if isinstance(event, LoggedIn):
            return self._logged_in(event)
        if isinstance(event, ConnectionLost):
            self.connected = False
            updates = self._lost(event.unanswered)
            # The first sentence says what went wrong; advice would not fit a status line.
            cause = event.reason.split(". ")[0].rstrip(".")
            text = f"Reconnecting… attempt {event.attempt}: {cause}"
            return [*updates, Status(text)]
        if isinstance(event, SessionEnded | LoggedOut):
            self.connected = False
            return [*self._lost(tuple(self._pending)), event]
        return [event]

    def _logged_in(self, event: LoggedIn) -> list[Update]:
        self.connected = True
        self._logins += 1
        if self.state is None:
            self.state = ChatState(event.user)
            save_last_login(
                LastLogin(self.address.host, self.address.port, self.credentials.username),
                self.profile_dir,
            )
        state = self.state
        for room in event.rooms:
            state.ensure_room(room)
        updates: list[Update] = [event, Status(None), SidebarChanged()]
        if event.reconnected:
            for conv in state.conversations.values():
                self._fill_gap(conv.key, conv.title, after=conv.last_id)
        elif state.current is None and state.conversations:
            state.select(state.ordered()[0].key)
            updates.append(CurrentChanged(state.current))
        return updates

    def _lost(self, unanswered: tuple[int, ...]) -> list[Update]:
        """Settle requests whose replies will never come."""
        updates: list[Update] = []
        for req in unanswered:
            pending = self._pending.pop(req, None)
            if pending is not None:
                updates.extend(self._reply_handlers[pending.purpose](pending, None))
        return updates

    def _conv(self, key: ConvKey | None) -> Conversation | None:
        if key is None or self.state is None:
            return None
        return self.state.conversations.get(key)

    def _handle_frame(self, frame: ServerFrame) -> list[Update]:
        state = self.state
        if state is None:
            return []
        req = getattr(frame, "req", None)
        pending = self._pending.pop(req, None) if isinstance(req, int) else None
        if pending is not None:
            return self._reply_handlers[pending.purpose](pending, frame)
        if isinstance(frame, Message):
            is_new = state.key_of(frame)[0] not in state.conversations
            updates: list[Update] = [
                LinesAdded(a) for a in state.add_messages([frame], unread=True)
            ]
            return [*updates, SidebarChanged()] if updates or is_new else updates
        if isinstance(frame, HistoryReply):
            # After a reconnect the pages sent unasked hold what was missed: unread.
            return self._history(frame, unread=self._logins > 1)
        if isinstance(frame, WhoReply):
            conv = state.ensure_room(frame.room)
            conv.members = {m.user.lower(): RoomMember(m.user, m.online) for m in frame.members}
            return [MembersChanged(conv.key)]
        if isinstance(frame, Member):
            return self._member(frame)
        if isinstance(frame, Presence):
            return self._presence(frame)
        return []

    def _history(self, reply: HistoryReply, *, unread: bool, older: bool = False) -> list[Update]:
        """A page that came unasked (login, join) or for paging back."""
        assert self.state is not None
        conv = (
            self.state.ensure_room(reply.room)
            if reply.room is not None
            else self.state.ensure_direct(reply.with_ or "")
        )
        extends_back = not conv.ids or bool(
            reply.messages and conv.oldest_id is not None and reply.messages[0].id <= conv.oldest_id
        )
        changes = self.state.add_messages(list(reply.messages), unread=unread, older=older)
        if extends_back or older:
            conv.has_older = reply.more
        if older:
            conv.loading_older = False
            count = sum(len(c.lines) for c in changes)
            return [Redraw(conv.key, older=count), SidebarChanged()]
        return [*(_as_update(c) for c in changes), SidebarChanged()]

    def _member(self, frame: Member) -> list[Update]:
        assert self.state is not None
        conv = self.state.ensure_room(frame.room)
        if frame.event == "joined":
            conv.members[frame.user.lower()] = RoomMember(frame.user, True)
            text = f"{frame.user} joined #{conv.title}"
        else:
            conv.members.pop(frame.user.lower(), None)
            text = f"{frame.user} left #{conv.title}"
        line = conv.notice(now_ts(), text)
        return [LinesAdded(Added(conv.key, [line], True)), MembersChanged(conv.key)]

    def _presence(self, frame: Presence) -> list[Update]:
        assert self.state is not None
        online = frame.status == "online"
        updates: list[Update] = []
        text = f"{frame.user} is {'online' if online else 'offline'}"
        for conv in self.state.conversations.values():
            member = conv.members.get(frame.user.lower())
            if member is None and conv.key != ConvKey.direct(frame.user):
                continue
            if member is not None:
                member.online = online
                updates.append(MembersChanged(conv.key))
            line = conv.notice(now_ts(), text)
            updates.append(LinesAdded(Added(conv.key, [line], True)))
        return updates

    # -- replies, by purpose (``None``: the connection was lost before the reply) ------

    def _send_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if isinstance(reply, Error):
            return self._refused(pending, reply, "Not sent")
        conv = self._conv(pending.key)
        if reply is None and conv is not None:
            conv.notice(
                now_ts(),
                "The connection dropped before the server confirmed your last message; "
                "if it was stored, it appears once reconnected.",
            )
            return [Redraw(conv.key)]
        return []

    def _join_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if isinstance(reply, Error):
            return self._refused(pending, reply, "Cannot join")
        if isinstance(reply, Joined):
            assert self.state is not None
            conv = self.state.ensure_room(reply.room)
            self.state.select(conv.key)
            return [SidebarChanged(), CurrentChanged(conv.key)]
        return []

    def _leave_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if isinstance(reply, Error):
            return self._refused(pending, reply, "Cannot leave")
        if isinstance(reply, Ok) and pending.key is not None:
            assert self.state is not None
            self.state.remove(pending.key)
            return [SidebarChanged(), CurrentChanged(self.state.current)]
        return []

    def _older_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if isinstance(reply, HistoryReply):
            return self._history(reply, unread=False, older=True)
        conv = self._conv(pending.key)
        if conv is not None:
            conv.loading_older = False  # no page is coming: Load older may ask again
        return self._refused(pending, reply, "Refused") if isinstance(reply, Error) else []

    def _gap_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if isinstance(reply, Error):
            return self._refused(pending, reply, "Refused")
        if not isinstance(reply, HistoryReply):
            return []
        updates = self._history(reply, unread=True)
        if reply.more and reply.messages:
            name = reply.room or reply.with_ or ""
            if pending.backward:
                self._fill_gap(pending.key, name, before=reply.messages[0].id)
            else:
                self._fill_gap(pending.key, name, after=reply.messages[-1].id)
        return updates

    def _passwd_reply(self, _pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if reply is None:
            return [PasswordResult(False, "The connection was lost; try again.")]
        if isinstance(reply, Error):
            return [PasswordResult(False, f"The password was not changed: {reply.message}.")]
        return [PasswordResult(True, "Your password was changed.")]

    def _refused(self, pending: _Pending, error: Error, heading: str) -> list[Update]:
        """Say in the conversation concerned (or the one on screen) why the server refused."""
        assert self.state is not None
        conv = self._conv(pending.key or self.state.current)
        if conv is None:
            return []
        conv.notice(now_ts(), f"{heading}: {error.message}.")
        return [Redraw(conv.key)]

    def _fill_gap(
        self, key: ConvKey | None, name: str, *, after: int = 0, before: int | None = None
    ) -> None:
        """Fetch what was missed: forward from ``after``, the last message seen.

        With nothing seen yet (``after`` 0; ids start at 1 and the contract wants a positive
        ``after``), everything there is was missed: page back from the newest instead.
        """
        if key is None:
            return
        backward = after == 0
        request = _history_request(key, name, limit=GAP_PAGE, before=before, after=after or None)
        self._request(request, _Pending(_Purpose.GAP, key, backward=backward))

    # -- actions ------------------------------------------------------------------------

    def _current(self) -> Conversation | None:
        return self._conv(self.state.current) if self.state else None

    def select(self, key: ConvKey) -> list[Update]:
        assert self.state is not None
        self.state.select(key)
        return [CurrentChanged(key), SidebarChanged()]

    def submit(self, line: str) -> str | None:
        """Send what was typed (text or a slash command); an error to show, or ``None``."""
        command = commands.parse(line)
        if isinstance(command, str):
            return command
        state = self.state
        if state is None:
            return "Not logged in."
        if isinstance(command, commands.JoinRoom):
            return self.join(command.room)
        if isinstance(command, commands.LeaveRoom):
            return self.leave(command.room)
        if isinstance(command, commands.DirectMessage):
            if state.is_me(command.user):
                return "That is you; pick someone else to talk to."
            peer = self.open_direct(command.user)
            self._request(
                Send(to=command.user, text=command.text), _Pending(_Purpose.SEND, peer.key)
            )
            return None
        conv = self._current()
        if conv is None:
            return "Join a room or pick a conversation first."
        if conv.is_room:
            request = Send(room=conv.title, text=command.text)
        else:
            request = Send(to=conv.title, text=command.text)
        self._request(request, _Pending(_Purpose.SEND, conv.key))
        return None

    def join(self, room: str) -> str | None:
        """Ask to join ``room``, a name as typed; an error to show, or ``None``."""
        name = normalize_room(room.strip())
        if name is None:
            return room_error(room)
        if self.state is None:
            return "Not logged in."
        self._request(Join(room=name), _Pending(_Purpose.JOIN))
        return None

    def leave(self, room: str | None = None) -> str | None:
        """Leave ``room`` (or the current one); a direct chat is just closed here."""
        assert self.state is not None
        key = ConvKey.room(room) if room else self.state.current
        conv = self._conv(key)
        if conv is None:
            return f"You are not in #{room}." if room else "No conversation is open."
        if conv.is_room:
            self._request(Leave(room=conv.title), _Pending(_Purpose.LEAVE, conv.key))
        else:
            self.state.remove(conv.key)
        return None

    def open_direct(self, user: str) -> Conversation:
        """Show the direct chat with ``user``, loading its latest messages the first time."""
        assert self.state is not None
        key = ConvKey.direct(user)
        is_new = key not in self.state.conversations
        conv = self.state.ensure_direct(user)
        self.state.select(key)
        if is_new:
            self.load_older(key)
        return conv

    def load_older(self, key: ConvKey | None = None) -> bool:
        """Ask for the page before the oldest message shown; ``False`` if there is none."""
        conv = self._conv(key or (self.state.current if self.state else None))
        if conv is None or conv.loading_older or (conv.ids and not conv.has_older):
            return False
        if conv.oldest_id is not None and not conv.has_older:
            return False
        request = _history_request(conv.key, conv.title, limit=OLDER_PAGE, before=conv.oldest_id)
        conv.loading_older = True
        self._request(request, _Pending(_Purpose.OLDER, conv.key))
        return True

    def clear(self) -> list[Update]:
        assert self.state is not None
        if self.state.current is None:
            return []
        self.state.clear(self.state.current, now_ts())
        return [Redraw(self.state.current)]

    def change_password(self, old: str, new: str) -> None:
        self._request(Passwd(old=old, new=new), _Pending(_Purpose.PASSWD))

    # -- export -------------------------------------------------------------------------

    def start_export(self, path: Path, fmt: str) -> str | None:
        """Fetch the current conversation's whole history, then save it; or an error."""
        conv = self._current()
        if conv is None:
            return "No conversation is open."
        if self._export is not None:
            return "An export is already running."
        self._export = _Export(conv.key, path, fmt)
        self._export_request(None)
        return None

    def cancel_export(self) -> None:
        """Stop fetching; nothing is written (the file is only written at the end)."""
        self._export = None
        for req, pending in list(self._pending.items()):
            if pending.purpose is _Purpose.EXPORT:
                del self._pending[req]

    def _export_request(self, before: int | None) -> None:
        job = self._export
        assert job is not None
        assert self.state is not None
        conv = self.state.conversations.get(job.key)
        title = conv.title if conv else job.key.key
        request = _history_request(job.key, title, limit=EXPORT_PAGE, before=before)
        self._request(request, _Pending(_Purpose.EXPORT, job.key))

    def _export_reply(self, _pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if reply is None:
            return [self._end_export("The connection was lost; nothing was saved.")]
        job = self._export
        if job is None:
            return []
        if not isinstance(reply, HistoryReply):
            message = reply.message if isinstance(reply, Error) else "unexpected reply"
            return [self._end_export(f"The server refused the export: {message}.")]
        job.pages.append(reply.messages)
        job.count += len(reply.messages)
        if reply.more and reply.messages:
            self._export_request(reply.messages[0].id)
            return [ExportProgress(job.count)]
        self._export = None
        records = (
            ExportRecord(m.id, m.ts, m.from_, m.room, m.to, m.text)
            for page in reversed(job.pages)
            for m in page
        )
        try:
            count = export_to_path(records, job.path, job.fmt, overwrite=True)
        except OSError as exc:
            return [ExportFailed(f"Could not write {job.path}: {exc.strerror or exc}.")]
        return [ExportFinished(job.path, count)]

    def _end_export(self, message: str) -> ExportFailed:
        self._export = None
        return ExportFailed(message)


def _history_request(
    key: ConvKey, name: str, *, limit: int, before: int | None = None, after: int | None = None
) -> History:
    """The request for a page of ``key``'s conversation, which is ``name`` on the wire.

    ``name`` is the room's name or the peer's as the server spells it; a direct chat's key
    is case-folded, so it cannot stand in for the name.
    """
    if key.kind is Kind.ROOM:
        return History(room=name, before=before, after=after, limit=limit)
    return History(with_=name, before=before, after=after, limit=limit)


def _as_update(added: Added) -> Update:
    return LinesAdded(added) if added.at_end else Redraw(added.key)
