"""One login, seen from the window's thread: network events in, view updates out.

``ChatSession`` owns the ``NetworkClient`` and the ``ChatState``. The window calls
``poll`` from a Tk ``after()`` timer; it drains a bounded number of network events, folds
them into the state, and returns small ``Update``\\ s saying what to redraw. It also keeps
track of the requests it made, so a reply finds its purpose: a page back, a gap being
filled after a reconnect, an export in progress, a password change, a moderation step.

Search and files live here as well: a search's results come back as one update, opening
one pages history back until the message is loaded; files go up in chunks and come down
into a temporary file (``transfers``), each with progress updates the window draws.

Read markers go back to the server from here too: whatever the person has seen moves a
conversation's marker (``Conversation.read_up_to``), and ``poll`` sends it, at most once
a second per conversation and only forward, so reading on one computer clears the
unread count on the others.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import math
import queue
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from chatsecure.client import commands
from chatsecure.client.events import (
    ConnectionLost,
    FileHashed,
    FrameArrived,
    HashFailed,
    LoggedIn,
    LoggedOut,
    LoginFailed,
    NetworkEvent,
    SessionEnded,
    TrustNeeded,
)
from chatsecure.client.network import Credentials, NetworkClient, ServerAddress
from chatsecure.client.profile import LastLogin, cache_dir, save_last_login
from chatsecure.client.search import SearchHit, hits
from chatsecure.client.state import Added, ChatState, Conversation, ConvKey, Kind, Line
from chatsecure.client.state import Member as RoomMember
from chatsecure.client.transfers import (
    Download,
    Stage,
    TransferError,
    Upload,
    human_size,
    start_hashing,
)
from chatsecure.client.trust import TrustStore
from chatsecure.client.validation import (
    message_error,
    room_error,
    search_error,
    topic_error,
    username_error,
)
from chatsecure.export import ExportRecord, export_to_path
from chatsecure.names import normalize_room
from chatsecure.protocol import (
    Create,
    Delete,
    Deleted,
    Edit,
    Edited,
    Error,
    ErrorCode,
    FileChunk,
    FileData,
    FileGet,
    FileInfo,
    FileOffer,
    FileSlot,
    History,
    HistoryReply,
    Invite,
    Invited,
    Join,
    Joined,
    Kick,
    Kicked,
    Leave,
    ListRooms,
    MarkRead,
    Member,
    Message,
    Ok,
    Passwd,
    Presence,
    ReadMarker,
    Request,
    RoleChanged,
    RoomsReply,
    Search,
    SearchResults,
    Send,
    ServerFrame,
    SetRole,
    SetTopic,
    TopicChanged,
    Unban,
    WhoReply,
)

OLDER_PAGE = 50
GAP_PAGE = 500
# Opening a search result pages back at most this far (pages of GAP_PAGE) before giving up.
MAX_JUMP_PAGES = 20
EXPORT_PAGE = 500
POLL_BATCH = 200
READ_INTERVAL = 1.0  # seconds between two read markers sent for one conversation
SEARCH_PAGE = 20
# Pictures shown as thumbnails: fetched by themselves when drawn, if no larger than this.
IMAGE_SUFFIXES = {"image/png": ".png", "image/gif": ".gif"}
IMAGE_MAX_BYTES = 2 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
class RoomChanged:
    """A room's topic, privacy or this user's role changed: its header and menu follow."""

    key: ConvKey


@dataclass(frozen=True, slots=True)
class Notice:
    """One line for the status bar: a moderation step done or refused."""

    text: str
    error: bool = False


@dataclass(frozen=True, slots=True)
class Alert:
    """Something the person must not miss (removed from a room, banned): a small window."""

    title: str
    text: str


@dataclass(frozen=True, slots=True)
class InviteReceived:
    room: str
    by: str
    topic: str


@dataclass(frozen=True, slots=True)
class Mentioned:
    """A new message names this user; the window notifies when it is not focused."""

    key: ConvKey
    sender: str
    where: str  # "#dev" or the peer's name
    text: str


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


@dataclass(frozen=True, slots=True)
class SearchFound:
    """A page of results; ``appended`` when it continues the page shown (More results)."""

    q: str
    hits: tuple[SearchHit, ...]
    more: bool
    appended: bool = False


@dataclass(frozen=True, slots=True)
class SearchFailed:
    message: str


@dataclass(frozen=True, slots=True)
class Reveal:
    """Scroll to this message and make it stand out for a moment (a search result opened)."""

    key: ConvKey
    message_id: int


@dataclass(frozen=True, slots=True)
class TransferProgress:
    transfer: int
    name: str
    done: int
    total: int
    upload: bool


@dataclass(frozen=True, slots=True)
class TransferEnded:
    """A transfer finished, failed or was cancelled; ``text`` says which, for people."""

    transfer: int
    text: str
    ok: bool


@dataclass(frozen=True, slots=True)
class ImageReady:
    """A picture fetched for its thumbnail is in the cache."""

    file_id: str
    path: Path


Update = (
    LinesAdded
    | Redraw
    | SidebarChanged
    | MembersChanged
    | CurrentChanged
    | RoomChanged
    | Notice
    | Alert
    | InviteReceived
    | Mentioned
    | Status
    | PasswordResult
    | ExportProgress
    | ExportFinished
    | ExportFailed
    | SearchFound
    | SearchFailed
    | Reveal
    | TransferProgress
    | TransferEnded
    | ImageReady
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
    MODERATE = enum.auto()  # invite, topic, role, kick, ban, unban
    ROOMS = enum.auto()  # the room list, for the topics and privacy of one's rooms
    EDIT = enum.auto()  # edit or delete a message
    READ = enum.auto()
    SEARCH = enum.auto()
    JUMP = enum.auto()  # pages back until a search result is loaded
    FILE_OFFER = enum.auto()
    FILE_CHUNK = enum.auto()
    FILE_GET = enum.auto()


_FILE_PURPOSES = (_Purpose.FILE_OFFER, _Purpose.FILE_CHUNK, _Purpose.FILE_GET)


@dataclass(frozen=True, slots=True)
class _Pending:
    """A request waiting for its reply: what it is for, and which conversation it concerns."""

    purpose: _Purpose
    key: ConvKey | None = None
    backward: bool = False  # a gap filled from the newest message back; older search results
    what: str = ""  # for the notice that reports the outcome: "Invite bob to #ops"
    serial: int = 0  # the transfer, the search, or the message being opened
    generation: int = 0  # an upload's chunks: which restart they belong to
    pages: int = 0  # opening a message: the pages read back so far


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
        clock: Callable[[], float] = time.monotonic,
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
        self.features: frozenset[str] = frozenset()
        self._clock = clock
        # Per conversation: the highest marker the server has (or was sent), and when.
        self._reads: dict[ConvKey, tuple[int, float]] = {}
        self._reply_handlers: dict[_Purpose, _ReplyHandler] = {
            _Purpose.SEND: self._send_reply,
            _Purpose.JOIN: self._join_reply,
            _Purpose.LEAVE: self._leave_reply,
            _Purpose.OLDER: self._older_reply,
            _Purpose.GAP: self._gap_reply,
            _Purpose.EXPORT: self._export_reply,
            _Purpose.PASSWD: self._passwd_reply,
            _Purpose.MODERATE: self._moderate_reply,
            _Purpose.ROOMS: self._rooms_reply,
            _Purpose.EDIT: self._edit_reply,
            _Purpose.READ: self._read_reply,
            _Purpose.SEARCH: self._search_reply,
            _Purpose.JUMP: self._jump_reply,
            _Purpose.FILE_OFFER: self._offer_reply,
            _Purpose.FILE_CHUNK: self._chunk_reply,
            _Purpose.FILE_GET: self._get_reply,
        }
        self._searches = 0  # the latest search's number: older ones' replies are dropped
        self._transfer_ids = itertools.count(1)
        self._uploads: dict[int, Upload] = {}
        self._downloads: dict[int, Download] = {}
        self._image_fetches: dict[str, int] = {}  # file id -> its download, for thumbnails
        self._images_failed: set[str] = set()

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
        self._end_transfers()
        if self._network is not None:
            self._network.close()

    @property
    def network(self) -> NetworkClient:
        if self._network is None:
            raise RuntimeError("the session has not been started")
        return self._network

    def _request(self, request: Request, pending: _Pending) -> int:
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
                break
            yield from self._handle_event(event)
        self._send_reads()

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
            updates = self._lost(tuple(self._pending))
            self._end_transfers()
            return [*updates, event]
        if isinstance(event, FileHashed):
            return self._hashed(event)
        if isinstance(event, HashFailed):
            upload = self._uploads.get(event.transfer)
            return self._upload_failed(upload, event.message) if upload else []
        return [event]

    def _logged_in(self, event: LoggedIn) -> list[Update]:
        self.connected = True
        self._logins += 1
        self.features = frozenset(event.features)
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
        if "rooms2" in self.features:
            # Neither welcome nor history says a room's topic or privacy; the list does.
            self._request(ListRooms(), _Pending(_Purpose.ROOMS))
        if event.reconnected:
            for conv in state.conversations.values():
                self._fill_gap(conv.key, conv.title, after=conv.last_id)
            updates.extend(self._resume_transfers())
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
        pending = self._pending.get(req) if isinstance(req, int) else None
        if isinstance(req, int) and not (isinstance(frame, FileData) and not frame.last):
            self._pending.pop(req, None)  # a download's reply is many frames: kept to the last
        if pending is not None:
            return self._reply_handlers[pending.purpose](pending, frame)
        if isinstance(frame, Message):
            return self._message(frame)
        if isinstance(frame, HistoryReply):
            # After a reconnect the pages sent unasked hold what was missed: unread; with
            # read markers the server says what was read.
            return self._history(frame, unread=self._logins > 1 or frame.read_up_to is not None)
        if isinstance(frame, WhoReply):
            conv = state.ensure_room(frame.room)
            conv.members = {
                m.user.lower(): RoomMember(m.user, m.online, m.role) for m in frame.members
            }
            mine = conv.members.get(state.me.lower())
            if mine is not None and mine.role is not None and mine.role != conv.role:
                conv.role = mine.role
                return [MembersChanged(conv.key), RoomChanged(conv.key)]
            return [MembersChanged(conv.key)]
        if isinstance(frame, Member):
            return self._member(frame)
        if isinstance(frame, Presence):
            return self._presence(frame)
        return self._room_frame(frame)

    def _room_frame(self, frame: ServerFrame) -> list[Update]:
        """The frames of the additions: rooms2, edit and read."""
        if isinstance(frame, Joined):
            return self._joined(frame)
        if isinstance(frame, TopicChanged):
            return self._topic_changed(frame)
        if isinstance(frame, RoleChanged):
            return self._role_changed(frame)
        if isinstance(frame, Kicked):
            return self._kicked(frame)
        if isinstance(frame, Invited):
            return [InviteReceived(frame.room, frame.by, frame.topic)]
        if isinstance(frame, Edited):
            return self._edited(frame)
        if isinstance(frame, Deleted):
            return self._deleted(frame)
        if isinstance(frame, ReadMarker):
            return self._read_marker(frame)
        return []

    def _message(self, frame: Message) -> list[Update]:
        assert self.state is not None
        state = self.state
        key, title = state.key_of(frame)
        is_new = key not in state.conversations
        changes = state.add_messages([frame], unread=True)
        updates: list[Update] = [LinesAdded(a) for a in changes]
        if updates or is_new:
            updates.append(SidebarChanged())
        for line in (line for change in changes for line in change.lines):
            if line.mention and line.sender is not None:
                where = f"#{title}" if key.kind is Kind.ROOM else title
                updates.append(Mentioned(key, line.sender, where, line.text))
        return updates

    def _history(self, reply: HistoryReply, *, unread: bool, older: bool = False) -> list[Update]:
        """A page that came unasked (login, join) or for paging back."""
        assert self.state is not None
        conv = (
            self.state.ensure_room(reply.room)
            if reply.room is not None
            else self.state.ensure_direct(reply.with_ or "")
        )
        if reply.read_up_to is not None:
            self._server_read(conv, reply.read_up_to)
            if not conv.ids and conv.key == self.state.current and not older:
                conv.divider_id = next(
                    (
                        m.id
                        for m in reply.messages
                        if m.id > conv.read_up_to and not self.state.is_me(m.from_)
                    ),
                    None,
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
            role = "member" if "rooms2" in self.features else None
            conv.members[frame.user.lower()] = RoomMember(frame.user, True, role)
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

    def _joined(self, frame: Joined) -> list[Update]:
        """A room joined or created: what the server says about it and this user's role."""
        assert self.state is not None
        conv = self.state.ensure_room(frame.room)
        if frame.topic is not None:
            conv.topic = frame.topic
        if frame.private is not None:
            conv.private = frame.private
        if frame.role is not None:
            conv.role = frame.role
        return [RoomChanged(conv.key), SidebarChanged()]

    def _topic_changed(self, frame: TopicChanged) -> list[Update]:
        assert self.state is not None
        conv = self.state.ensure_room(frame.room)
        conv.topic = frame.topic
        said = f"set the topic: {frame.topic}" if frame.topic else "cleared the topic"
        line = conv.notice(now_ts(), f"{frame.by} {said}")
        return [LinesAdded(Added(conv.key, [line], True)), RoomChanged(conv.key)]

    def _role_changed(self, frame: RoleChanged) -> list[Update]:
        assert self.state is not None
        conv = self.state.ensure_room(frame.room)
        member = conv.members.get(frame.user.lower())
        if member is not None:
            member.role = frame.role
        who = "You are" if self.state.is_me(frame.user) else f"{frame.user} is"
        if self.state.is_me(frame.user):
            conv.role = frame.role
        line = conv.notice(now_ts(), f"{who} now {frame.role} of #{conv.title} ({frame.by})")
        return [
            LinesAdded(Added(conv.key, [line], True)),
            MembersChanged(conv.key),
            RoomChanged(conv.key),
        ]

    def _kicked(self, frame: Kicked) -> list[Update]:
        """Removed from a room: it leaves the list, and a window says who did it and why."""
        assert self.state is not None
        key = ConvKey.room(frame.room)
        self.state.remove(key)
        self._reads.pop(key, None)
        done = "banned you from" if frame.ban else "removed you from"
        text = f"{frame.by} {done} #{key.key}."
        if frame.reason:
            text += f"\nReason: {frame.reason}"
        if frame.ban:
            text += "\nYou cannot join it again unless you are unbanned."
        title = "Banned from a room" if frame.ban else "Removed from a room"
        return [SidebarChanged(), CurrentChanged(self.state.current), Alert(title, text)]

    def _edited(self, frame: Edited) -> list[Update]:
        assert self.state is not None
        conv = self.state.find_message(frame.id)
        if conv is None:
            return []  # not loaded here: history will bring the new text
        line = conv.lines[conv.line_of(frame.id) or 0]
        mention = not line.own and self.state.mentions_me(frame.text)
        conv.edit_line(frame.id, frame.text, mention)
        return [Redraw(conv.key), SidebarChanged()]

    def _deleted(self, frame: Deleted) -> list[Update]:
        assert self.state is not None
        conv = self.state.find_message(frame.id)
        index = conv.line_of(frame.id) if conv is not None else None
        if conv is None or index is None:
            return []
        shared = conv.lines[index].file
        conv.delete_line(frame.id)
        if shared is not None:
            self._uncache(shared)  # deleted for everyone: its picture goes from here too
        return [Redraw(conv.key), SidebarChanged()]

    def _read_marker(self, frame: ReadMarker) -> list[Update]:
        """Read on another device of this user: the unread count here clears too."""
        conv = self._conv(
            ConvKey.room(frame.room)
            if frame.room is not None
            else ConvKey.direct(frame.with_ or "")
        )
        if conv is None:
            return []
        self._server_read(conv, frame.up_to)
        return [SidebarChanged()]

    # -- read markers -------------------------------------------------------------------

    def _server_read(self, conv: Conversation, up_to: int) -> None:
        """The server's marker for ``conv``: ours moves up to it, and it need not be sent."""
        conv.mark_read(up_to)
        known, sent_at = self._reads.get(conv.key, (0, -math.inf))
        self._reads[conv.key] = (max(known, up_to), sent_at)

    def _send_reads(self) -> None:
        """Send each marker that moved forward, at most one per conversation per second."""
        if "read" not in self.features or not self.connected or self.state is None:
            return
        now = self._clock()
        for conv in self.state.conversations.values():
            known, sent_at = self._reads.get(conv.key, (0, -math.inf))
            if conv.read_up_to <= known or now - sent_at < READ_INTERVAL:
                continue
            up_to = conv.read_up_to
            request = (
                MarkRead(up_to=up_to, room=conv.title)
                if conv.is_room
                else MarkRead(up_to=up_to, with_=conv.title)
            )
            self._request(request, _Pending(_Purpose.READ, conv.key))
            self._reads[conv.key] = (up_to, now)

    def set_focused(self, focused: bool) -> list[Update]:
        """The window gained or lost the focus; what is on screen counts as read once it has it."""
        if self.state is None:
            return []
        self.state.focused = focused
        conv = self._current()
        if focused and conv is not None and conv.mark_read():
            self._send_reads()
            return [SidebarChanged()]
        return []

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
            if reply.code == "banned":
                text = f"You are banned from #{pending.what} and cannot join it."
                return [Alert("Banned from a room", text), Notice(text, error=True)]
            heading = "Cannot create" if pending.key is not None else "Cannot join"
            return self._refused(pending, reply, heading)
        if isinstance(reply, Joined):
            assert self.state is not None
            updates = self._joined(reply)
            conv = self.state.select(ConvKey.room(reply.room))
            return [*updates, CurrentChanged(conv.key)]
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

    def _moderate_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if reply is None:
            return [Notice(f"{pending.what}: the connection was lost; try again.", error=True)]
        if isinstance(reply, Error):
            return [
                *self._refused(pending, reply, f"{pending.what} refused"),
                Notice(f"{pending.what} refused: {_reason(reply)}", error=True),
            ]
        return [Notice(f"{pending.what}: done.")]

    def _edit_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if isinstance(reply, Error):
            return [
                *self._refused(pending, reply, f"{pending.what} refused"),
                Notice(f"{pending.what} refused: {_reason(reply)}", error=True),
            ]
        if reply is None:
            return [Notice(f"{pending.what}: the connection was lost; try again.", error=True)]
        return []

    def _rooms_reply(self, _pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        """Topics and privacy of the rooms this user is in; later pages are asked for."""
        if not isinstance(reply, RoomsReply) or self.state is None:
            return []
        updates: list[Update] = []
        for room in reply.rooms:
            conv = self._conv(ConvKey.room(room.name))
            if conv is None or not room.joined:
                continue
            conv.topic = room.topic if room.topic is not None else conv.topic
            conv.private = room.private if room.private is not None else conv.private
            updates.append(RoomChanged(conv.key))
        if reply.more and reply.rooms:
            self._request(ListRooms(after=reply.rooms[-1].name), _Pending(_Purpose.ROOMS))
        return [*updates, SidebarChanged()] if updates else updates

    def _read_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        """A marker lost with the connection is sent again; a refused one is not retried."""
        if reply is None and pending.key is not None:
            self._reads.pop(pending.key, None)
        return []

    def _passwd_reply(self, _pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if reply is None:
            return [PasswordResult(False, "The connection was lost; try again.")]
        if isinstance(reply, Error):
            return [PasswordResult(False, f"The password was not changed: {reply.message}.")]
        return [PasswordResult(True, "Your password was changed.")]

    def _refused(self, pending: _Pending, error: Error, heading: str) -> list[Update]:
        """Say in the conversation concerned (or the one on screen) why the server refused."""
        assert self.state is not None
        conv = self._conv(pending.key) or self._conv(self.state.current)
        if conv is None:
            return []
        conv.notice(now_ts(), f"{heading}: {_reason(error)}")
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
        self._send_reads()
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
        self._request(Join(room=name), _Pending(_Purpose.JOIN, what=name))
        return None

    def create_room(self, room: str, *, private: bool, topic: str) -> str | None:
        """Make a new room (this user its owner); an error to show, or ``None``."""
        name = normalize_room(room.strip())
        if name is None:
            return room_error(room)
        error = topic_error(topic)
        if error:
            return error
        if self.state is None:
            return "Not logged in."
        request = Create(room=name, private=private, topic=topic)
        self._request(request, _Pending(_Purpose.JOIN, ConvKey.room(name), what=name))
        return None

    # -- moderation (the current room) --------------------------------------------------

    def _moderated(self) -> Conversation | str:
        conv = self._current()
        if conv is None or not conv.is_room:
            return "Pick a room first."
        return conv

    def _moderate(self, conv: Conversation, request: Request, what: str) -> None:
        self._request(request, _Pending(_Purpose.MODERATE, conv.key, what=what))

    def invite(self, user: str) -> str | None:
        conv = self._moderated()
        if isinstance(conv, str):
            return conv
        error = username_error(user)
        if error:
            return error
        self._moderate(conv, Invite(room=conv.title, user=user), f"Invite {user} to #{conv.title}")
        return None

    def set_topic(self, topic: str) -> str | None:
        conv = self._moderated()
        if isinstance(conv, str):
            return conv
        error = topic_error(topic.strip())
        if error:
            return error
        request = SetTopic(room=conv.title, topic=topic.strip())
        self._moderate(conv, request, f"Set the topic of #{conv.title}")
        return None

    def set_role(self, user: str, role: str) -> str | None:
        conv = self._moderated()
        if isinstance(conv, str):
            return conv
        if role not in ("owner", "moderator", "member"):
            return f"No such role: {role}."
        request = SetRole(room=conv.title, user=user, role=role)  # type: ignore[arg-type]
        self._moderate(conv, request, f"Make {user} {role} of #{conv.title}")
        return None

    def kick(self, user: str, reason: str = "", *, ban: bool = False) -> str | None:
        conv = self._moderated()
        if isinstance(conv, str):
            return conv
        error = username_error(user) or topic_error(reason.strip(), "reason")
        if error:
            return error
        if self.state is not None and self.state.is_me(user):
            return "That is you; use Leave instead."
        request = Kick(room=conv.title, user=user, reason=reason.strip(), ban=ban)
        self._moderate(conv, request, f"{'Ban' if ban else 'Kick'} {user} from #{conv.title}")
        return None

    def unban(self, user: str) -> str | None:
        conv = self._moderated()
        if isinstance(conv, str):
            return conv
        error = username_error(user)
        if error:
            return error
        self._moderate(conv, Unban(room=conv.title, user=user), f"Unban {user} in #{conv.title}")
        return None

    # -- editing and deleting messages ------------------------------------------------

    def can_edit(self, line: Line) -> bool:
        return line.own and line.id is not None and not line.deleted

    def can_delete(self, line: Line) -> bool:
        """One's own messages; in a room, a moderator's or owner's for anyone's."""
        if line.id is None or line.deleted:
            return False
        conv = self._current()
        return line.own or (conv is not None and conv.can_moderate)

    def last_own_message(self) -> Line | None:
        """What Up in an empty entry edits: this user's last message in this conversation."""
        conv = self._current()
        return conv.last_own_message() if conv is not None else None

    def edit(self, message_id: int, text: str) -> str | None:
        """Replace a message's text; an error to show, or ``None`` (the change comes back
        from the server as ``edited``, to every device)."""
        error = message_error(text)
        if error:
            return error
        conv = self._current()
        self._request(
            Edit(id=message_id, text=text),
            _Pending(_Purpose.EDIT, conv.key if conv else None, what="Edit"),
        )
        return None

    def delete(self, message_id: int) -> None:
        conv = self._current()
        self._request(
            Delete(id=message_id),
            _Pending(_Purpose.EDIT, conv.key if conv else None, what="Delete"),
        )

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
            ExportRecord(m.id, m.ts, m.from_, m.room, m.to, m.text or "")
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

    # -- search -------------------------------------------------------------------------

    def search(self, q: str, where: ConvKey | None = None, before: int | None = None) -> str | None:
        """Search one conversation (or, ``where`` None, all); ``before`` asks for older
        results. An error to show, or ``None`` (``SearchFound`` follows)."""
        q = q.strip()
        error = search_error(q)
        if error:
            return error
        if "search" not in self.features:
            return "This server does not offer search."
        conv = self._conv(where)
        if where is not None and conv is None:
            return "That conversation is no longer open."
        room = conv.title if conv is not None and conv.is_room else None
        with_ = conv.title if conv is not None and not conv.is_room else None
        self._searches += 1
        request = Search(q=q, room=room, with_=with_, before=before, limit=SEARCH_PAGE)
        self._request(
            request,
            _Pending(_Purpose.SEARCH, where, backward=before is not None, what=q,
                     serial=self._searches),
        )  # fmt: skip
        return None

    def _search_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        if pending.serial != self._searches or self.state is None:
            return []  # a newer search was made since
        if reply is None:
            return [SearchFailed("The connection was lost; search again.")]
        if isinstance(reply, Error):
            return [SearchFailed(f"The search failed: {_reason(reply)}")]
        if not isinstance(reply, SearchResults):
            return []
        found = hits(self.state, pending.what, reply.results)
        return [SearchFound(pending.what, found, reply.more, appended=pending.backward)]

    def open_message(self, hit: SearchHit) -> list[Update]:
        """Show ``hit``'s conversation at that message, paging back until it is loaded."""
        assert self.state is not None
        conv = self.state.ensure(hit.key, hit.title)
        updates = self.select(hit.key)
        if hit.id in conv.ids:
            return [*updates, Reveal(hit.key, hit.id)]
        self._page_towards(conv, hit.id)
        return updates

    def _page_towards(self, conv: Conversation, message_id: int, pages: int = 0) -> None:
        # Paging back from what is shown keeps the view without holes, which Load older and
        # the gap filling after a reconnect rely on; so it is bounded by MAX_JUMP_PAGES.
        request = _history_request(conv.key, conv.title, limit=GAP_PAGE, before=conv.oldest_id)
        conv.loading_older = True
        pending = _Pending(_Purpose.JUMP, conv.key, serial=message_id, pages=pages + 1)
        self._request(request, pending)

    def _jump_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        conv = self._conv(pending.key)
        if conv is None:
            return []
        if not isinstance(reply, HistoryReply):
            conv.loading_older = False
            if isinstance(reply, Error):
                return self._refused(pending, reply, "Cannot open the message")
            return [Notice("The connection was lost before the message was loaded.", error=True)]
        updates = self._history(reply, unread=False, older=True)
        target = pending.serial
        if target in conv.ids:
            return [*updates, Reveal(conv.key, target)]
        if reply.more and reply.messages and reply.messages[0].id > target:
            if pending.pages >= MAX_JUMP_PAGES:
                far = f"{MAX_JUMP_PAGES * GAP_PAGE:,}"
                text = f"That message is more than {far} messages back; Load older goes on."
                return [*updates, Notice(text, error=True)]
            self._page_towards(conv, target, pending.pages)
            return updates
        return [*updates, Notice("That message is no longer in the conversation.", error=True)]

    # -- files: sending -----------------------------------------------------------------

    def send_file(self, path: Path) -> str | None:
        """Share the file at ``path`` in the current conversation; an error, or ``None``.

        It is hashed first (on its own thread), then offered, then sent in chunks;
        ``TransferProgress`` and finally ``TransferEnded`` follow.
        """
        conv = self._current()
        if conv is None:
            return "Pick a conversation first."
        if "files" not in self.features:
            return "This server does not take files."
        if not path.is_file():
            return f"{path} is not a file."
        where = {"room": conv.title} if conv.is_room else {"to": conv.title}
        upload = Upload(next(self._transfer_ids), path, **where)
        self._uploads[upload.transfer] = upload
        start_hashing(upload.transfer, path, self.events)
        return None

    def _hashed(self, event: FileHashed) -> list[Update]:
        upload = self._uploads.get(event.transfer)
        if upload is None:
            return []  # cancelled while it was read
        try:
            upload.hashed(event.size, event.sha256)
        except TransferError as exc:
            return self._upload_failed(upload, str(exc))
        self._offer(upload)
        return [self._upload_progress(upload)]

    def _offer(self, upload: Upload) -> None:
        upload.stage = Stage.OFFERED
        request = FileOffer(name=upload.name, size=upload.size, sha256=upload.sha256,
                            room=upload.room, to=upload.to)  # fmt: skip
        self._request(request, _Pending(_Purpose.FILE_OFFER, serial=upload.transfer))

    def _send_chunks(self, upload: Upload) -> None:
        assert upload.token is not None
        for offset, data in upload.chunks():
            self._request(
                FileChunk(upload=upload.token, offset=offset, data=data),
                _Pending(_Purpose.FILE_CHUNK, serial=upload.transfer,
                         generation=upload.generation),
            )  # fmt: skip

    def _offer_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        upload = self._uploads.get(pending.serial)
        if upload is None:
            return []
        if reply is None:
            upload.stage = Stage.LOST  # offered again once reconnected
            return []
        if isinstance(reply, Error):
            return self._upload_failed(upload, _file_refusal(upload.name, upload.size, reply))
        if not isinstance(reply, FileSlot):
            return []
        try:
            upload.slot(reply.upload, reply.chunk_bytes)
            self._send_chunks(upload)
        except TransferError as exc:
            return self._upload_failed(upload, str(exc))
        return [self._upload_progress(upload)]

    def _chunk_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        upload = self._uploads.get(pending.serial)
        if upload is None or reply is None:
            return []  # cancelled; or lost, and resumed once reconnected
        try:
            if isinstance(reply, Ok):
                stored = reply.id is not None
                if upload.acknowledged(pending.generation, reply.received, stored=stored):
                    return self._upload_done(upload)
                if pending.generation == upload.generation:
                    self._send_chunks(upload)
                return [self._upload_progress(upload)]
            if not isinstance(reply, Error) or pending.generation != upload.generation:
                return []  # a chunk sent before a restart: its complaint is already handled
            if reply.code == ErrorCode.BAD_UPLOAD and reply.received is not None:
                upload.restart(reply.received)
                self._send_chunks(upload)
                return [self._upload_progress(upload)]
            if upload.slot_may_be_stale:
                self._offer(upload)  # the server forgot the upload while we were away
                return []
            return self._upload_failed(upload, _file_refusal(upload.name, upload.size, reply))
        except TransferError as exc:
            return self._upload_failed(upload, str(exc))

    def _upload_progress(self, upload: Upload) -> TransferProgress:
        return TransferProgress(upload.transfer, upload.name, upload.acked, upload.size, True)

    def _upload_done(self, upload: Upload) -> list[Update]:
        self._forget(upload.transfer)
        return [
            TransferProgress(upload.transfer, upload.name, upload.size, upload.size, True),
            TransferEnded(upload.transfer, f"Sent {upload.name} ({human_size(upload.size)}).",
                          ok=True),
        ]  # fmt: skip

    def _upload_failed(self, upload: Upload, text: str) -> list[Update]:
        self._forget(upload.transfer)
        return [TransferEnded(upload.transfer, text, ok=False)]

    # -- files: fetching ----------------------------------------------------------------

    def save_file(self, info: FileInfo, target: Path) -> str | None:
        """Fetch a shared file into ``target``; an error, or ``None`` (progress follows)."""
        if "files" not in self.features:
            return "This server does not serve files."
        download = self._fetch(info, target)
        return download if isinstance(download, str) else None

    def _cached(self, info: FileInfo) -> Path | None:
        """Where a picture small enough for a thumbnail is kept; ``None`` for other files."""
        suffix = IMAGE_SUFFIXES.get(info.mime)
        if suffix is None or info.size > IMAGE_MAX_BYTES or not _SHA256.fullmatch(info.sha256):
            return None
        return cache_dir(self.profile_dir) / f"{info.sha256}{suffix}"

    def _uncache(self, info: FileInfo) -> None:
        path = self._cached(info)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()

    def image_path(self, info: FileInfo) -> Path | None:
        """The cached copy of a small PNG or GIF for its thumbnail; ``None`` if it is not
        such a picture or not cached yet, in which case it is fetched (``ImageReady``)."""
        path = self._cached(info)
        if path is None:
            return None
        if path.is_file():
            return path
        fetching = info.id in self._image_fetches or info.id in self._images_failed
        if not fetching and "files" in self.features:
            download = self._fetch(info, path)
            if isinstance(download, Download):
                self._image_fetches[info.id] = download.transfer
        return None

    def _fetch(self, info: FileInfo, target: Path) -> Download | str:
        try:
            download = Download(next(self._transfer_ids), info, target)
        except TransferError as exc:
            return str(exc)
        self._downloads[download.transfer] = download
        self._request(FileGet(file=info.id), _Pending(_Purpose.FILE_GET, serial=download.transfer))
        return download

    def _get_reply(self, pending: _Pending, reply: ServerFrame | None) -> list[Update]:
        download = self._downloads.get(pending.serial)
        if download is None or reply is None:
            return []  # cancelled; or lost, and asked for again once reconnected
        if isinstance(reply, Error):
            return self._download_failed(download, _file_refusal(download.name, download.size,
                                                                 reply))  # fmt: skip
        if not isinstance(reply, FileData):
            return []
        try:
            download.append(reply.offset, reply.data)
            if reply.last:
                download.finish()
        except TransferError as exc:
            return self._download_failed(download, str(exc))
        image = self._is_image(download)
        if reply.last:
            self._forget(download.transfer)
            if image:
                return [ImageReady(download.file_id, download.target)]
            text = f"Saved {download.name} to {download.target}."
            return [
                TransferProgress(download.transfer, download.name, download.size, download.size,
                                 False),
                TransferEnded(download.transfer, text, ok=True),
            ]  # fmt: skip
        if image:
            return []
        return [TransferProgress(download.transfer, download.name, download.done, download.size,
                                 False)]  # fmt: skip

    def _is_image(self, download: Download) -> bool:
        return self._image_fetches.get(download.file_id) == download.transfer

    def _download_failed(self, download: Download, text: str) -> list[Update]:
        image = self._is_image(download)
        if image:
            self._images_failed.add(download.file_id)
        self._forget(download.transfer)
        return [] if image else [TransferEnded(download.transfer, text, ok=False)]

    # -- files: either way --------------------------------------------------------------

    def cancel_transfer(self, transfer: int) -> list[Update]:
        """Stop at once; a partial upload is dropped by the server after its timeout."""
        upload, download = self._uploads.get(transfer), self._downloads.get(transfer)
        name = upload.name if upload else download.name if download else None
        if name is None:
            return []
        self._forget(transfer)
        return [TransferEnded(transfer, f"Cancelled {name}.", ok=False)]

    def _forget(self, transfer: int) -> None:
        """Close a transfer's file and drop its requests (their replies are then ignored)."""
        upload = self._uploads.pop(transfer, None)
        if upload is not None:
            upload.close()
        download = self._downloads.pop(transfer, None)
        if download is not None:
            download.discard()
            if self._image_fetches.get(download.file_id) == transfer:
                del self._image_fetches[download.file_id]
        self._drop_requests(transfer)

    def _resume_transfers(self) -> list[Update]:
        """After a reconnect: offer again, send again from what the server confirmed (it
        says where to resume if it has more), and fetch again from what was written."""
        updates: list[Update] = []
        for upload in list(self._uploads.values()):
            if upload.stage is Stage.LOST:
                self._offer(upload)
            elif upload.stage is Stage.SENDING:
                self._drop_requests(upload.transfer)
                upload.slot_may_be_stale = True
                try:
                    upload.restart(upload.acked)
                    self._send_chunks(upload)
                except TransferError as exc:
                    updates.extend(self._upload_failed(upload, str(exc)))
        for download in self._downloads.values():
            self._drop_requests(download.transfer)
            self._request(
                FileGet(file=download.file_id, offset=download.done),
                _Pending(_Purpose.FILE_GET, serial=download.transfer),
            )
        return updates

    def _drop_requests(self, transfer: int) -> None:
        for req, pending in list(self._pending.items()):
            if pending.purpose in _FILE_PURPOSES and pending.serial == transfer:
                del self._pending[req]

    def _end_transfers(self) -> None:
        for transfer in [*self._uploads, *self._downloads]:
            self._forget(transfer)


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


def _reason(error: Error) -> str:
    """The server's message, made plain for the errors of the additions."""
    if error.code == "not_allowed":
        return f"you are not allowed to do that ({error.message})."
    return f"{error.message}."


def _file_refusal(name: str, size: int, error: Error) -> str:
    """Why a file was not sent or fetched, in words that say what to do about it."""
    if error.code == ErrorCode.FILE_TOO_LARGE:
        return f"{name} ({human_size(size)}) is larger than this server accepts ({error.message})."
    if error.code == ErrorCode.QUOTA_EXCEEDED:
        return (
            f"{name} was not sent: it would go over your storage quota on the server "
            f"({error.message}). Delete some of the files you shared first."
        )
    if error.code == ErrorCode.BAD_UPLOAD:
        return f"The server rejected {name}: {error.message}. Try sending it again."
    if error.code == ErrorCode.NO_SUCH_FILE:
        return f"{name} is no longer on the server (its message may have been deleted)."
    return f"{name}: {_reason(error)}"


def _as_update(added: Added) -> Update:
    return LinesAdded(added) if added.at_end else Redraw(added.key)
